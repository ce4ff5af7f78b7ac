"""Routing: who receives each taken document, written into the ledger as planned deliveries.

The customer is found as docs/DESIGN.md orders it (customers.py). A PDF and the XML of the same
invoice travel together when the customer gets both kinds.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from invoice_mailer.addressbook.book import describe
from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.config.languages import ITALIAN, LANGUAGE_NAMES
from invoice_mailer.config.model import Config
from invoice_mailer.errors import describe as describe_error
from invoice_mailer.errors import shown
from invoice_mailer.ledger import document_changes, documents, notices
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState, Purpose
from invoice_mailer.routing.customers import Match, find_customer
from invoice_mailer.routing.documentfacts import document_facts
from invoice_mailer.routing.languages import choose_language, share_language
from invoice_mailer.routing.planning import (
    already_sent,
    find_partner,
    join_session,
    kind_class,
    plan_delivery,
)

log = logging.getLogger(__name__)

# Documents routed per commit in a burst: one fsync for all of them, and short enough that
# the sender's own commits never wait long behind the batch.
ROUTE_BATCH = 16


@dataclass
class _Plan:
    """What routing a document needs from outside the ledger's writer lock: its facts, its
    customer and whether these bytes already reached the same addresses."""

    row: sqlite3.Row
    facts: dict[str, Any]
    match: Match
    kinds: tuple[str, ...]
    wants: bool
    earlier: tuple[sqlite3.Row, tuple[str, ...]] | None


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
        self.warned_languages: set[str] = set()  # languages without templates, logged once

    def step(self, limit: int = -1) -> int:
        """Route what is new, what stopped waiting, and held documents if the book changed;
        at most `limit` documents (-1: all); return how many."""
        if self.book.reload_if_changed():
            self.release_held()
        now = self.clock()
        rows = documents.to_route(self.ledger.db, now, limit)
        waiting = list(reversed(rows))
        ready: list[_Plan] = []  # looked at, not yet written
        while waiting or ready:
            # The reading and deciding first, the writer lock only for the writing: the
            # sender's commit between two messages waits for the writes alone.
            while waiting and len(ready) < ROUTE_BATCH:
                row = waiting.pop()
                with self._contained(row, now):
                    ready.append(self._plan(row))
            routed: list[tuple[sqlite3.Row, str]] = []
            with self.ledger.batch():  # routing touches nothing outside the ledger
                while ready:
                    plan = ready.pop(0)
                    with self._contained(plan.row, now):
                        routed.append((plan.row, self._record(plan, now)))
                    if self.ledger.others_waiting():
                        break  # commit what is routed and let the other writer go first
            for row, outcome in routed:  # said once it is committed
                warn = outcome.startswith(("held", "customer unknown"))
                log.log(logging.WARNING if warn else logging.INFO, "%s: %s", row["name"], outcome)
        return len(rows)

    @contextmanager
    def _contained(self, row: sqlite3.Row, now: float) -> Iterator[None]:
        try:
            yield
        except (OSError, sqlite3.Error):
            raise  # the disk or the ledger, not the document: the worker retries
        except Exception as exc:  # one document nobody foresaw never stops the others
            self._unexpected(row, exc, now)

    def _unexpected(self, row: sqlite3.Row, exc: Exception, now: float) -> None:
        reason = f"unexpected error while routing: {describe_error(exc)}"
        log.error("%s cannot be sent: %s", row["name"], reason, exc_info=shown(exc))
        with self.ledger.transaction() as db:
            facts = documents.info_of(row)
            document_changes.record_route(
                db, row["id"], DocumentState.FAILED, reason, facts, self.clock()
            )
            notices.add(db, now, f"{row['name']} cannot be sent: {reason}")

    def next_deadline(self) -> float | None:
        """Seconds until a document stops waiting for its pair (None: nobody waits)."""
        end = documents.next_wait_end(self.ledger.db)
        return None if end is None else max(0.0, end - self.clock())

    def release_held(self) -> int:
        """Give held documents another look (the address book or the config changed).

        The reason stays until then: held again for the same reason, a document is not
        announced to the admin a second time.
        """
        with self.ledger.transaction() as db:
            count = document_changes.release_held(db)
        if count:
            log.info("routing %d held document(s) again", count)
        return count

    def _plan(self, row: sqlite3.Row) -> _Plan:
        config = self.config
        facts = documents.info_of(row) or self._facts(row)
        match = find_customer(config, self.book.book, facts)
        customer = match.customer
        facts["customer_code"] = customer.code if customer else facts.get("customer", "")
        facts["customer_name"] = (customer.name if customer else "") or facts.get("xml_name", "")
        facts["to"] = list(match.addresses)
        choose_language(config, customer, facts, self.warned_languages)
        # For the office's search and story: how the customer was found, and its keys (a PDF
        # carries no P.IVA; its customer's row does).
        facts["found_by"] = match.looked_up
        if customer is not None:
            facts.update(customer_vat=customer.vat or "", customer_tax_code=customer.tax_code or "")
        kinds = (customer.send if customer else None) or config.customers.send
        wants = kind_class(row["kind"]) in kinds
        return _Plan(row, facts, match, kinds, wants, self._sent_before(row, wants, match))

    def _record(self, plan: _Plan, now: float) -> str:
        """Write the route into the ledger; what the log says of it."""
        config, row, facts, match = self.config, plan.row, plan.facts, plan.match
        wants, kinds, earlier = plan.wants, plan.kinds, plan.earlier
        with self.ledger.transaction() as db:
            if earlier is not None:  # the same bytes already reached these same addresses
                return self._skip_duplicate(db, row, facts, *earlier)
            join_session(db, config, row, now)  # held or not, the accountant's bundle has it
            if wants and match.ambiguous:
                names = " and ".join(describe(c) for c in match.ambiguous)
                reason = (
                    f"ambiguous: {match.looked_up} is on {len(match.ambiguous)} rows of the "
                    f"address book: {names}; correct the address book (reloaded by itself)"
                )
                return self._hold(db, row, facts, reason, now)
            if wants and match.addresses:
                together = set(kinds) == {"pdf", "xml"}
                return self._deliver(db, row, facts, together, now)
            if wants and config.customers.unknown == "hold":
                reason = f"no customer found in the address book (looked up {match.looked_up})"
                return self._hold(db, row, facts, reason, now)
            skipped = f"customer unknown ({match.looked_up}); sent only to all_to"
            note = skipped if wants else None
            document_changes.record_route(
                db, row["id"], DocumentState.ROUTED, note, facts, self.clock()
            )
            return skipped if wants else "routed to all_to only (not in customers.send)"

    def _hold(self, db: sqlite3.Connection, row: sqlite3.Row, facts: dict, reason: str, now):
        document_changes.record_route(
            db, row["id"], DocumentState.HELD, reason, facts, self.clock()
        )
        if row["reason"] != reason:  # held again after a reload: the admin knows
            notices.add(db, now, f"{row['name']} is held: {reason}")
        return f"held: {reason}"

    def _sent_before(self, row: sqlite3.Row, wants: bool, match: Match):
        """(the earlier document, the addresses) when these bytes already reached the very
        addresses this document would go to: its customer's, or the accountant's alone."""
        config = self.config
        if wants and (match.addresses or match.ambiguous or config.customers.unknown == "hold"):
            to, purpose = match.addresses, Purpose.CUSTOMER
        elif config.all_to.address and kind_class(row["kind"]) in config.all_to.kinds:
            to, purpose = (config.all_to.address,), Purpose.BUNDLE
        else:
            return None
        earlier = already_sent(self.ledger.db, config, row, to, purpose)
        return None if earlier is None else (earlier, to)

    def _skip_duplicate(self, db: sqlite3.Connection, row, facts, earlier, to: tuple[str, ...]):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier["sent_at"]))
        reason = (
            f"same content as document {earlier['id']} ({earlier['name']}), already sent to "
            f"{', '.join(to)} on {when}; not sent again"
        )
        document_changes.record_route(
            db, row["id"], DocumentState.DONE, reason, facts, self.clock()
        )
        document_changes.mark_duplicate(db, row["id"], earlier["id"])
        return reason

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
        if (
            together
            and facts.get("pair")
            and partner is None
            and row["state"] != DocumentState.WAITING
        ):
            wait = self.config.customers.pair_wait
            document_changes.record_route(
                db, row["id"], DocumentState.WAITING, None, facts, self.clock(), until=now + wait
            )
            return f"waiting up to {wait:g} s for the other half of invoice {facts['number']}"
        members = [(row, facts)]
        if partner is not None:
            members.append((partner, documents.info_of(partner)))
            members.sort(key=lambda m: kind_class(m[0]["kind"]) != "pdf")  # the PDF names it
            pdf, xml = members[0][1], members[1][1]
            if pdf.get("date_from") == "taken" and xml.get("date_from") == "xml":
                pdf.update(date=xml["date"], year=xml["year"], date_from="xml")
            share_language(pdf, xml)
        ids = [member["id"] for member, _ in members]
        plan_delivery(db, self.config, Purpose.CUSTOMER, tuple(facts["to"]), ids, now)
        for member, member_facts in members:
            document_changes.record_route(
                db, member["id"], DocumentState.ROUTED, None, member_facts, self.clock()
            )
        names = " and ".join(m["name"] for m, _ in members if m["id"] != row["id"])
        words = self.config.templates.for_language(members[0][1].get("language")).language
        said = f", in {LANGUAGE_NAMES[words]}" if words != ITALIAN else ""  # the message's
        return f"routed to {', '.join(facts['to'])}" + (f" with {names}" if names else "") + said
