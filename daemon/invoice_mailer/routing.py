"""Routing: who receives each taken document, written into the ledger as planned deliveries.

First hit wins, as the DESIGN orders it: the file-name pattern's groups (customer code, vat,
tax_code, email), then the FatturaPA customer's P.IVA, then its Codice Fiscale, and last the
XML's PECDestinatario when customers.use_xml_pec allows it. A PDF and the XML of the same
invoice travel together when the customer gets both kinds.
"""

from __future__ import annotations

import datetime
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import fatturapa, sessions
from .addressbook import AddressBook, Customer, normalise_tax_code, normalise_vat
from .addressbook_source import AddressBookSource
from .config import Config
from .errors import DocumentError
from .ledger import (
    DOC_FAILED,
    DOC_HELD,
    DOC_ROUTED,
    DOC_TAKEN,
    DOC_WAITING,
    Ledger,
    add_notice,
    info_of,
)
from .planning import find_partner, kind_class, pair_key, plan_delivery
from .trouble import describe, shown
from .yamlsource import Invalid, check_address

log = logging.getLogger(__name__)

NOTHING_TO_LOOK_UP = (
    "nothing: the file name does not match customers.filename and the content names no customer"
)
# Date groups of customers.filename, as invoicing programs write dates in file names.
_NAME_DATES = ("%Y-%m-%d", "%Y%m%d", "%Y_%m_%d", "%Y.%m.%d", "%d-%m-%Y", "%d_%m_%Y", "%d.%m.%Y")


@dataclass(frozen=True)
class Match:
    """Who a document goes to, and what was looked up to find that (for the held reason)."""

    customer: Customer | None
    addresses: tuple[str, ...]
    looked_up: str  # e.g. "code C042", "P.IVA IT01234567890", for the admin


def document_facts(
    config: Config, name: str, kind: str, data: bytes | None, taken_at: float
) -> dict[str, Any]:
    """Template fields and lookup keys of one document, from its name and, for XML, its content.

    The content's number and date win over the name's: they are the invoice's own. The name's
    `doc` wins over TipoDocumento, as the DESIGN says. With neither, the date is the day taken.
    """
    named = config.customers.filename_regex.match(name)
    found = named.groupdict() if named else {}
    groups = {k: v.strip() for k, v in found.items() if v and v.strip()}
    facts: dict[str, Any] = {
        k: groups[k] for k in ("customer", "vat", "tax_code", "email") if k in groups
    }
    invoice = _invoice(name, kind, data)
    if invoice is not None:
        first = invoice.invoices[0]
        facts.update(
            doc=groups.get("doc") or first.doc,
            number=", ".join(i.number for i in invoice.invoices),
            date=f"{first.date:%d/%m/%Y}",
            year=str(first.date.year),
            date_from="xml",
            xml_vat=invoice.customer_vat,
            xml_tax_code=invoice.customer_tax_code,
            xml_pec=invoice.pec_destinatario,
            xml_name=invoice.customer_name,
        )
        # A batch (several invoices in one file) gets no pair key: it goes alone, at once.
        # Holding it for every PDF of its invoices, or attaching it to each, would delay or
        # duplicate it; its PDFs wait customers.pair_wait for a single XML, then go alone.
        if len(invoice.invoices) == 1:
            facts["pair"] = pair_key(first.number, facts["year"])
        return facts
    day = _name_date(name, groups.get("date"))
    facts["date_from"] = "name" if day else "taken"
    day = day or datetime.date.fromtimestamp(taken_at)
    facts.update(
        doc=groups.get("doc") or fatturapa.DEFAULT_DOC_NAME,
        number=groups.get("number") or name.split(".")[0],
        date=f"{day:%d/%m/%Y}",
        year=groups.get("year") or str(day.year),
    )
    if groups.get("number"):  # a number made up from the file name pairs with nothing
        facts["pair"] = pair_key(groups["number"], facts["year"])
    return facts


def _invoice(name: str, kind: str, data: bytes | None) -> fatturapa.FatturaInfo | None:
    if kind == "pdf" or data is None:
        return None
    try:
        return fatturapa.parse_file_bytes(name, data)
    except DocumentError as exc:
        # Intake already checked it is well-formed (or a p7m that opens): some other XML.
        log.info("%s: not read as FatturaPA (%s); routing it by its name only", name, exc)
        return None


def _name_date(name: str, text: str | None) -> datetime.date | None:
    if not text:
        return None
    for layout in _NAME_DATES:
        try:
            return datetime.datetime.strptime(text, layout).date()
        except ValueError:
            continue
    log.warning("%s: %r in its name is not a date; using the day it was taken", name, text)
    return None


def find_customer(config: Config, book: AddressBook, facts: dict[str, Any]) -> Match:
    """The DESIGN's matching order; the first key that finds a customer or an address wins."""
    use_pec = config.customers.use_xml_pec
    lookups: list[tuple[str, str | None, Callable[[str], Customer | None] | None]] = [
        ("code", _strip(facts.get("customer")), book.by_code),
        ("P.IVA", _vat(facts.get("vat")), book.by_vat),
        ("Codice Fiscale", _tax_code(facts.get("tax_code")), _by_tax_code_or_vat(book)),
        ("e-mail", _strip(facts.get("email")), None),  # the address itself is the hit
        ("P.IVA", _vat(facts.get("xml_vat")), book.by_vat),
        ("Codice Fiscale", _tax_code(facts.get("xml_tax_code")), _by_tax_code_or_vat(book)),
        ("PECDestinatario", _strip(facts.get("xml_pec")) if use_pec else None, None),
    ]
    tried: list[str] = []
    for label, value, lookup in lookups:
        if not value:
            continue
        if lookup is None:
            try:
                address = check_address(value)
            except Invalid:
                tried.append(f"{label} {value} (not a valid address)")
                continue
            return Match(book.by_email(address), (address,), f"{label} {address}")
        tried.append(f"{label} {value}")
        customer = lookup(value)
        if customer is not None:
            return Match(customer, customer.addresses(config.customers.prefer), tried[-1])
    if facts.get("xml_pec") and not use_pec:
        tried.append(f"PECDestinatario {facts['xml_pec']} (not used: customers.use_xml_pec is off)")
    return Match(None, (), ", ".join(tried) or NOTHING_TO_LOOK_UP)


def _strip(value: str | None) -> str | None:
    return value.strip() if value else None


def _vat(value: str | None) -> str | None:  # the form the book keys on, shown to the admin
    return normalise_vat(value) if value else None


def _tax_code(value: str | None) -> str | None:
    return normalise_tax_code(value) if value else None


def _by_tax_code_or_vat(book: AddressBook) -> Callable[[str], Customer | None]:
    """A company's Codice Fiscale is usually its P.IVA's 11 digits: try both."""

    def lookup(value: str) -> Customer | None:
        found = book.by_tax_code(value)
        if found is None and value.isdigit() and len(value) == 11:
            found = book.by_vat(value)
        return found

    return lookup


class Router:
    """Plans deliveries for taken documents; re-plans held ones when the address book changes."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        book: AddressBookSource,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.ledger = ledger
        self.book = book
        self.clock = clock

    def step(self) -> int:
        """Route what is new, what stopped waiting, and held documents if the book changed."""
        if self.book.reload_if_changed():
            self.release_held()
        now = self.clock()
        rows = self.ledger.query(
            # moving_to: `retry` is still moving the file back into the spool.
            "SELECT * FROM documents WHERE (state = ? OR (state = ? AND wait_until <= ?)) "
            "AND moving_to IS NULL ORDER BY id",
            *(DOC_TAKEN, DOC_WAITING, now),
        )
        for row in rows:
            try:
                self._route(row, now)
            except (OSError, sqlite3.Error):
                raise  # the disk or the ledger, not the document: the worker retries
            except Exception as exc:  # one document nobody foresaw never stops the others
                self._unexpected(row, exc, now)
        return len(rows)

    def _unexpected(self, row: sqlite3.Row, exc: Exception, now: float) -> None:
        reason = f"unexpected error while routing: {describe(exc)}"
        log.error("%s cannot be sent: %s", row["name"], reason, exc_info=shown(exc))
        with self.ledger.transaction() as db:
            self._save(db, row["id"], DOC_FAILED, reason, info_of(row))
            add_notice(db, now, f"{row['name']} cannot be sent: {reason}")

    def next_deadline(self) -> float | None:
        """Seconds until a document stops waiting for its pair (None: nobody waits)."""
        row = self.ledger.one("SELECT MIN(wait_until) FROM documents WHERE state = ?", DOC_WAITING)
        return None if row[0] is None else max(0.0, row[0] - self.clock())

    def release_held(self) -> int:
        """Give held documents another look (the address book or the config changed).

        The reason stays until then: held again for the same reason, a document is not
        announced to the admin a second time.
        """
        with self.ledger.transaction() as db:
            count = db.execute(
                "UPDATE documents SET state = ? WHERE state = ?", (DOC_TAKEN, DOC_HELD)
            ).rowcount
        if count:
            log.info("routing %d held document(s) again", count)
        return count

    def _route(self, row: sqlite3.Row, now: float) -> None:
        config = self.config
        facts = info_of(row) or self._facts(row)
        match = find_customer(config, self.book.book, facts)
        customer = match.customer
        facts["customer_code"] = customer.code if customer else facts.get("customer", "")
        facts["customer_name"] = (customer.name if customer else "") or facts.get("xml_name", "")
        facts["to"] = list(match.addresses)
        kinds = (customer.send if customer else None) or config.customers.send
        wants = kind_class(row["kind"]) in kinds
        with self.ledger.transaction() as db:
            sessions.join(db, config, row, now)
            if wants and match.addresses:
                together = set(kinds) == {"pdf", "xml"}
                outcome = self._deliver(db, row, facts, together, now)
            elif wants and config.customers.unknown == "hold":
                reason = f"no customer found in the address book (looked up {match.looked_up})"
                self._save(db, row["id"], DOC_HELD, reason, facts)
                if row["reason"] != reason:  # held again after a reload: the admin knows
                    add_notice(db, now, f"{row['name']} is held: {reason}")
                outcome = f"held: {reason}"
            else:
                skipped = f"customer unknown ({match.looked_up}); sent only to all_to"
                self._save(db, row["id"], DOC_ROUTED, skipped if wants else None, facts)
                outcome = skipped if wants else "routed to all_to only (not in customers.send)"
        warn = outcome.startswith(("held", "customer unknown"))
        log.log(logging.WARNING if warn else logging.INFO, "%s: %s", row["name"], outcome)

    def _facts(self, row: sqlite3.Row) -> dict[str, Any]:
        data = None
        if row["kind"] != "pdf":
            try:
                data = (self.config.state_dir / row["location"]).read_bytes()
            except OSError as exc:
                log.warning("%s: cannot be read (%s); routing it by name", row["name"], exc)
        return document_facts(self.config, row["name"], row["kind"], data, row["taken_at"])

    def _deliver(
        self, db: sqlite3.Connection, row: sqlite3.Row, facts: dict, together: bool, now: float
    ) -> str:
        """Plan the customer's message, with the other half of the invoice when it is here."""
        partner = find_partner(db, row, facts) if together else None
        if together and facts.get("pair") and partner is None and row["state"] != DOC_WAITING:
            wait = self.config.customers.pair_wait
            self._save(db, row["id"], DOC_WAITING, None, facts, until=now + wait)
            return f"waiting up to {wait:g} s for the other half of invoice {facts['number']}"
        members = [(row, facts)]
        if partner is not None:
            members.append((partner, info_of(partner)))
            members.sort(key=lambda m: kind_class(m[0]["kind"]) != "pdf")  # the PDF names it
            pdf, xml = members[0][1], members[1][1]
            if pdf.get("date_from") == "taken" and xml.get("date_from") == "xml":
                pdf.update(date=xml["date"], year=xml["year"], date_from="xml")
        ids = [member["id"] for member, _ in members]
        plan_delivery(db, self.config, "customer", tuple(facts["to"]), ids, now)
        for member, member_facts in members:
            self._save(db, member["id"], DOC_ROUTED, None, member_facts)
        names = " and ".join(m["name"] for m, _ in members if m["id"] != row["id"])
        return f"routed to {', '.join(facts['to'])}" + (f" with {names}" if names else "")

    def _save(self, db, doc_id: int, state: str, reason: str | None, facts: dict, until=None):
        row = (state, reason, until, self.clock(), json.dumps(facts), facts.get("number"))
        who = (facts.get("customer_code"), facts.get("customer_name"))
        db.execute(
            "UPDATE documents SET state = ?, reason = ?, wait_until = ?, updated_at = ?, "
            "info = ?, number = ?, customer_code = ?, customer_name = ? WHERE id = ?",
            (*row, *who, doc_id),
        )
