"""Routing: who receives each taken document, written into the ledger as planned deliveries.

First hit wins, as the DESIGN orders it: the file-name pattern's groups (customer code, vat,
tax_code, email), then the FatturaPA customer's P.IVA, then its Codice Fiscale. A PDF and the
XML of the same invoice travel together when the customer gets both kinds.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fatturapa, sessions
from .addressbook import AddressBook, AddressBookSource, Customer, normalise_tax_code, normalise_vat
from .config import Config
from .errors import DocumentError
from .ledger import DOC_HELD, DOC_ROUTED, DOC_TAKEN, DOC_WAITING, Ledger, info_of
from .planning import plan_delivery
from .yamlsource import Invalid, check_address

log = logging.getLogger(__name__)


def kind_class(kind: str) -> str:
    """The kinds the config speaks of: a signed .xml.p7m is an XML invoice."""
    return "pdf" if kind == "pdf" else "xml"


@dataclass(frozen=True)
class Match:
    """Who a document belongs to, and how that was found (for the held reason)."""

    customer: Customer | None
    addresses: tuple[str, ...]
    looked_up: str  # e.g. "code C042", "P.IVA IT0123…", for the admin


def document_facts(config: Config, name: str, kind: str, data: bytes | None, taken_at: float):
    """Template fields and lookup keys of one document, from its name and, for XML, its content."""
    facts: dict[str, Any] = {}
    match = config.customers.filename_regex.match(name)
    if match:
        facts.update({k: v.strip() for k, v in match.groupdict().items() if v})
    if "customer" in facts:
        facts["customer_code"] = facts.pop("customer")
    if kind != "pdf" and data is not None:
        try:
            invoice = fatturapa.parse_file_bytes(name, data)
        except DocumentError as exc:
            log.warning("%s: not read as FatturaPA (%s); routing by its name only", name, exc)
        else:
            first = invoice.invoices[0]
            facts.setdefault("doc", first.doc)
            facts.setdefault("number", ", ".join(i.number for i in invoice.invoices))
            facts.setdefault("date", first.date.strftime("%d/%m/%Y"))
            facts.setdefault("year", str(first.date.year))
            facts["xml_vat"] = invoice.customer_vat
            facts["xml_tax_code"] = invoice.customer_tax_code
            facts["xml_pec"] = invoice.pec_destinatario
            facts.setdefault("customer_name", invoice.customer_name)
    day = datetime.date.fromtimestamp(taken_at)
    facts.setdefault("doc", "Fattura" if kind != "pdf" else "Documento")
    facts.setdefault("number", Path(name).name.split(".")[0])
    if facts.get("date") and "/" not in facts["date"]:
        facts["date"] = _italian_date(facts["date"])
    facts.setdefault("date", day.strftime("%d/%m/%Y"))
    facts.setdefault("year", facts["date"][-4:])
    return facts


def _italian_date(text: str) -> str:
    try:
        return datetime.date.fromisoformat(text).strftime("%d/%m/%Y")
    except ValueError:
        return text


def find_customer(config: Config, book: AddressBook, facts: dict[str, Any]) -> Match:
    """The DESIGN's matching order; the first key that finds a customer wins."""
    tried: list[str] = []
    prefer = config.customers.prefer
    lookups: list[tuple[str, str | None, Callable[[str], Customer | None]]] = [
        ("code", facts.get("customer_code"), book.by_code),
        ("P.IVA", facts.get("vat"), lambda v: book.by_vat(normalise_vat(v))),
        (
            "Codice Fiscale",
            facts.get("tax_code"),
            lambda v: book.by_tax_code(normalise_tax_code(v)),
        ),
        ("e-mail", facts.get("email"), book.by_email),
        ("P.IVA", facts.get("xml_vat"), lambda v: book.by_vat(normalise_vat(v))),
        ("Codice Fiscale", facts.get("xml_tax_code"), _by_tax_code_or_vat(book)),
    ]
    for label, value, lookup in lookups:
        if not value:
            continue
        tried.append(f"{label} {value}")
        customer = lookup(value)
        if customer is not None:
            return Match(customer, customer.addresses(customer.prefer or prefer), tried[-1])
    for label, value in (("e-mail", facts.get("email")), ("PECDestinatario", facts.get("xml_pec"))):
        if not value or (label == "PECDestinatario" and not config.customers.use_xml_pec):
            continue
        try:
            return Match(None, (check_address(value),), f"{label} {value}")
        except Invalid:
            tried.append(f"{label} {value} (not a valid address)")
    return Match(None, (), ", ".join(tried) or "nothing in the file name or content")


def _by_tax_code_or_vat(book: AddressBook) -> Callable[[str], Customer | None]:
    """Companies' Codice Fiscale is often their P.IVA digits: try both."""

    def lookup(value: str) -> Customer | None:
        found = book.by_tax_code(normalise_tax_code(value))
        if found is None and value.strip().isdigit() and len(value.strip()) == 11:
            found = book.by_vat(normalise_vat(value))
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
            "SELECT * FROM documents WHERE state = ? OR (state = ? AND wait_until <= ?) ORDER BY id",
            DOC_TAKEN,
            DOC_WAITING,
            now,
        )
        for row in rows:
            self._route(row, now)
        return len(rows)

    def release_held(self) -> int:
        with self.ledger.transaction() as db:
            count = db.execute(
                "UPDATE documents SET state = ?, reason = NULL WHERE state = ?",
                (DOC_TAKEN, DOC_HELD),
            ).rowcount
        if count:
            log.info("address book changed: routing %d held document(s) again", count)
        return count

    def _route(self, row, now: float) -> None:
        config = self.config
        facts = info_of(row) if row["info"] else None
        if facts is None:
            data = None
            if row["kind"] != "pdf":
                data = (config.state_dir / row["location"]).read_bytes()
            facts = document_facts(config, row["name"], row["kind"], data, row["taken_at"])
        match = find_customer(config, self.book.book, facts)
        if match.customer is not None:
            facts["customer_code"] = match.customer.code
            facts["customer_name"] = match.customer.name or facts.get("customer_name", "")
        facts.setdefault("customer_name", "")
        facts.setdefault("customer_code", "")
        kinds = (match.customer.send if match.customer and match.customer.send else None) or (
            config.customers.send
        )
        wants_customer = kind_class(row["kind"]) in kinds
        with self.ledger.transaction() as db:
            sessions.join(db, config, row, now)
            if wants_customer and match.addresses:
                partner = self._partner(db, row, facts, kinds, now)
                if partner == "wait":
                    self._save(
                        db,
                        row["id"],
                        DOC_WAITING,
                        None,
                        facts,
                        wait_until=now + config.customers.pair_wait,
                    )
                    return
                documents = [row["id"], *([partner] if partner else [])]
                self._plan(db, documents, match.addresses, now)
                for document_id in documents:
                    self._save(
                        db,
                        document_id,
                        DOC_ROUTED,
                        None,
                        facts if document_id == row["id"] else None,
                    )
            elif wants_customer and config.customers.unknown == "hold":
                reason = f"no customer found in the address book (looked up {match.looked_up})"
                self._save(db, row["id"], DOC_HELD, reason, facts)
                db.execute(
                    "INSERT INTO notices(created_at, text) VALUES (?, ?)",
                    (now, f"{row['name']} is held: {reason}"),
                )
            else:
                reason = (
                    None
                    if not wants_customer
                    else (f"customer unknown ({match.looked_up}); sent only to all_to")
                )
                self._save(db, row["id"], DOC_ROUTED, reason, facts)
        if wants_customer and match.addresses:
            log.info("routed %s to %s", row["name"], ", ".join(match.addresses))
        elif wants_customer:
            log.warning("%s: no customer found (looked up %s)", row["name"], match.looked_up)

    def _partner(self, db, row, facts: dict, kinds, now: float) -> int | str | None:
        """The other half of a PDF+XML pair, "wait" to wait for it, or None to go alone."""
        if set(kinds) != {"pdf", "xml"} or not facts.get("number"):
            return None
        mine = kind_class(row["kind"])
        for other in db.execute(
            "SELECT * FROM documents WHERE state = ? AND number = ? AND id != ?",
            (DOC_WAITING, facts["number"], row["id"]),
        ).fetchall():
            other_facts = info_of(other)
            same_year = other_facts.get("year") == facts.get("year")
            same_customer = other_facts.get("customer_code") == facts.get("customer_code")
            if kind_class(other["kind"]) != mine and (same_year or same_customer):
                return other["id"]
        if row["state"] == DOC_WAITING:
            return None  # waited long enough: go alone
        return "wait"

    def _save(
        self,
        db,
        document_id: int,
        state: str,
        reason: str | None,
        facts: dict | None,
        wait_until: float | None = None,
    ) -> None:
        columns = "state = ?, reason = ?, wait_until = ?, updated_at = ?"
        values: list[Any] = [state, reason, wait_until, self.clock()]
        if facts is not None:
            columns += ", info = ?, number = ?, customer_code = ?, customer_name = ?"
            values += [
                json.dumps(facts),
                facts.get("number"),
                facts.get("customer_code"),
                facts.get("customer_name"),
            ]
        db.execute(f"UPDATE documents SET {columns} WHERE id = ?", (*values, document_id))

    def _plan(self, db, documents: list[int], addresses: tuple[str, ...], now: float) -> None:
        plan_delivery(db, self.config, "customer", addresses, documents, now)
