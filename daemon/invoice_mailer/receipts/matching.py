"""Which of our messages a receipt, bounce or SdI notice speaks of, and what it means for each
recipient (or for the XML document). Reads the ledger, writes nothing: recording.py does.

Only what we sent can be changed: a receipt must quote a Message-ID of ours, from our sender,
about a recipient of that message; an SdI notice must be certified as SdI's and name an XML the
service took. Anything else is `NotOurs`, with the reason for the log, and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from invoice_mailer.config.model import Config
from invoice_mailer.ledger import deliveries, delivery_recipients, documents
from invoice_mailer.ledger.delivery_recipients import Expectation
from invoice_mailer.ledger.states import DeliveryState, Proof, Purpose
from invoice_mailer.receipts.bounces import Bounce
from invoice_mailer.receipts.pec import PecReceipt, ReceiptKind
from invoice_mailer.receipts.sdi import NoticeKind, SdiMail, SdiNotice

_NOT_DELIVERED = (ReceiptKind.ERRORE_CONSEGNA, ReceiptKind.RILEVAZIONE_VIRUS)
_ABOUT_ONE = (*_NOT_DELIVERED, ReceiptKind.AVVENUTA_CONSEGNA, ReceiptKind.PREAVVISO_ERRORE_CONSEGNA)
_ITALIAN = {
    ReceiptKind.ERRORE_CONSEGNA: "mancata consegna",
    ReceiptKind.RILEVAZIONE_VIRUS: "virus rilevato dal gestore del destinatario",
    ReceiptKind.NON_ACCETTAZIONE: "non accettazione",
}


@dataclass(frozen=True)
class NotOurs:
    reason: str


@dataclass(frozen=True)
class RecipientProof:
    delivery_id: int
    address: str
    proof: Proof
    when: float
    provider_id: str | None = None
    reason: str | None = None
    expecting: Expectation | None = None


@dataclass(frozen=True)
class SdiOutcome:
    document_id: int
    name: str
    kind: NoticeKind
    when: float
    reason: str | None


@dataclass
class Outcome:
    """What one message means; recorded in one transaction with the stored receipt."""

    kind: str  # the receipt's kind as stored: accettazione, …, bounce, sdi-NS
    message_id: str | None = None
    delivery_id: int | None = None
    document_id: int | None = None
    recipient: str | None = None
    provider_id: str | None = None
    provider_at: float | None = None
    reason: str | None = None
    proofs: list[RecipientProof] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)  # lost-reply deliveries now known sent
    sdi: list[SdiOutcome] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    summary: str = ""  # the log line


def match(
    db: sqlite3.Connection, config: Config, found: PecReceipt | Bounce | SdiMail, now: float
) -> Outcome | NotOurs:
    if isinstance(found, SdiMail):
        return _sdi(db, found, now)
    outcome = _pec(db, config, found) if isinstance(found, PecReceipt) else _bounce(db, found, now)
    if isinstance(outcome, Outcome) and outcome.delivery_id is not None:
        delivery = deliveries.by_id(db, outcome.delivery_id)
        if delivery is not None and delivery["purpose"] == Purpose.ALERT:
            outcome.notices = []  # an alert about an alert that did not arrive would loop
    return outcome


# -- PEC receipts -------------------------------------------------------------------------


def _pec(db: sqlite3.Connection, config: Config, receipt: PecReceipt) -> Outcome | NotOurs:
    ours = config.sender.address.lower()
    if receipt.sender.lower() != ours:
        return NotOurs(f"a {receipt.kind} for a message {receipt.sender} sent, not {ours}")
    sent = deliveries.maybe_sent_with_message_id(db, receipt.message_id)
    if not sent:
        return NotOurs(f"a {receipt.kind} for {receipt.message_id}, which the service never sent")
    by_address = _recipients(sent)
    when = receipt.provider_time.timestamp()
    outcome = Outcome(
        kind=str(receipt.kind),
        message_id=receipt.message_id,
        delivery_id=sent[0]["id"],
        provider_id=receipt.provider_id,
        provider_at=when,
        reason=receipt.reason,
    )
    label = _label(db, sent[0])
    if receipt.kind in _ABOUT_ONE:
        named = [receipt.recipient] if receipt.recipient else []
    else:
        named = [a.address for a in receipt.addressees] or list(by_address)
    certified = {a.address.lower() for a in receipt.addressees if a.certified}
    targets = [a.lower() for a in named if a.lower() in by_address]
    if not targets:
        return NotOurs(f"a {receipt.kind} for {receipt.message_id} about {named or 'nobody'}, "
                       "not a recipient of that message")  # fmt: skip
    outcome.recipient = targets[0] if len(targets) == 1 else None
    kind = receipt.kind
    for address in targets:
        delivery = by_address[address]
        proof, expecting, reason, notice = Proof.ACCEPTED, None, None, ""
        if kind is ReceiptKind.ACCETTAZIONE and address in certified:
            expecting = Expectation("consegna", when + config.receipts.deliver_within)
        elif kind is ReceiptKind.AVVENUTA_CONSEGNA:
            proof = Proof.DELIVERED
        elif kind in _NOT_DELIVERED or kind is ReceiptKind.NON_ACCETTAZIONE:
            proof, reason = Proof.NOT_DELIVERED, receipt.reason or _ITALIAN[kind]
            notice = (
                f"{label} did not reach {address}: {_ITALIAN[kind]} ({reason}); "
                f"Message-ID {receipt.message_id}"
            )
        elif kind is ReceiptKind.PREAVVISO_ERRORE_CONSEGNA:
            expecting = Expectation("consegna", when + config.receipts.deliver_within)
            notice = (
                f"{label} is not yet delivered to {address} after 12 hours; its provider is "
                f"still trying ({receipt.reason or 'preavviso di mancata consegna'})"
            )
        if _add_proof(db, outcome, delivery, address, proof, when, receipt.provider_id, reason,
                      expecting) and notice:  # fmt: skip
            outcome.notices.append(notice)
    if kind in (ReceiptKind.ACCETTAZIONE, ReceiptKind.NON_ACCETTAZIONE):
        outcome.confirmed = [row["id"] for row in sent if row["state"] != DeliveryState.SENT]
    outcome.summary = f"{kind} for {label} (Message-ID {receipt.message_id})" + (
        f", {', '.join(targets)}" if kind in _ABOUT_ONE else ""
    )
    return outcome


# -- bounces ------------------------------------------------------------------------------


def _bounce(db: sqlite3.Connection, bounce: Bounce, now: float) -> Outcome | NotOurs:
    message_id = bounce.message_id
    if message_id is None:
        return NotOurs("a bounce that does not quote the returned message's Message-ID")
    sent = deliveries.maybe_sent_with_message_id(db, message_id)
    if not sent:
        return NotOurs(f"a bounce for {message_id}, which the service never sent")
    by_address = _recipients(sent)
    label = _label(db, sent[0])
    outcome = Outcome(kind="bounce", message_id=message_id, delivery_id=sent[0]["id"])
    for status in bounce.recipients:
        address = next(
            (a for a in (status.recipient, status.original_recipient) if a and a in by_address),
            None,
        )
        if address is None or not status.failed:
            continue
        words = " ".join(x for x in (status.status, status.diagnostic) if x) or "refused"
        where = f" by {bounce.reporting_mta}" if bounce.reporting_mta else ""
        reason = f"bounced{where}: {words}"
        if _add_proof(db, outcome, by_address[address], address, Proof.NOT_DELIVERED, now, None,
                      reason, None):  # fmt: skip
            outcome.notices.append(f"{label} did not reach {address}: {reason}")
    if not outcome.proofs:
        return NotOurs(f"a bounce for {message_id} with no failed recipient of that message")
    targets = [p.address for p in outcome.proofs]
    outcome.recipient = targets[0] if len(targets) == 1 else None
    outcome.reason = outcome.proofs[0].reason
    # It travelled, so the server had taken it: a lost reply needs no resend (it would bounce).
    outcome.confirmed = [row["id"] for row in sent if row["state"] != DeliveryState.SENT]
    outcome.summary = f"bounce for {label} (Message-ID {message_id}): {', '.join(targets)}"
    return outcome


# -- SdI notices --------------------------------------------------------------------------


def _sdi(db: sqlite3.Connection, found: SdiMail, now: float) -> Outcome | NotOurs:
    if not found.from_sdi:
        return NotOurs(
            f"an SdI-like notice from {found.certified_sender or 'an uncertified sender'}, "
            "not certified as sent by SdI (…@pec.fatturapa.it)"
        )
    outcome = Outcome(kind="sdi")
    for notice in found.notices:
        document = documents.xml_named(db, notice.file_name)
        if document is None:
            continue
        moment = notice.delivered_at or notice.received_at
        reason = _sdi_reason(notice)
        outcome.sdi.append(SdiOutcome(document["id"], document["name"], notice.kind,
                                      moment.timestamp() if moment else now, reason))  # fmt: skip
        if notice.kind is NoticeKind.NS:
            outcome.notices.append(
                f"SdI refused {document['name']} (notifica di scarto, SdI id {notice.sdi_id}): "
                f"{reason}; correct it and send it to SdI again"
            )
    if not outcome.sdi:
        names = ", ".join(n.file_name for n in found.notices)
        return NotOurs(f"an SdI notice about {names}, which the service never took")
    first, last = found.notices[0], outcome.sdi[-1]
    outcome.kind = "sdi-" + "-".join(dict.fromkeys(str(s.kind) for s in outcome.sdi))
    outcome.document_id, outcome.provider_id = last.document_id, first.sdi_id
    outcome.provider_at, outcome.reason = last.when, last.reason
    outcome.summary = ", ".join(f"SdI {s.kind} for {s.name}" for s in outcome.sdi)
    return outcome


def _sdi_reason(notice: SdiNotice) -> str | None:
    if notice.errors:
        return "; ".join(f"{e.code} {e.description}".strip() for e in notice.errors)
    if notice.kind is NoticeKind.NE and notice.outcome:
        verdict = {"EC01": "accettata", "EC02": "rifiutata"}.get(notice.outcome, notice.outcome)
        said = f": {notice.description}" if notice.description else ""
        return f"{notice.outcome} {verdict}{said}"
    return notice.description


# -- shared ---------------------------------------------------------------------------------


def _recipients(sent: list[sqlite3.Row]) -> dict[str, sqlite3.Row]:
    """Each address our messages with that Message-ID went to → the message that took it."""
    found: dict[str, sqlite3.Row] = {}
    for row in sent:
        for column in ("to_addrs", "cc_addrs", "bcc_addrs"):
            for address in json.loads(row[column] or "[]"):
                found.setdefault(address.lower(), row)
    return found


def _add_proof(
    db: sqlite3.Connection,
    outcome: Outcome,
    delivery: sqlite3.Row,
    address: str,
    proof: Proof,
    when: float,
    provider_id: str | None,
    reason: str | None,
    expecting: Expectation | None,
) -> bool:
    """Later knowledge only: a consegna read before its accettazione is not undone by it (a
    preavviso still re-arms the wait for the consegna); whether the proof changes."""
    current = delivery_recipients.get(db, delivery["id"], address)
    known = Proof(current["proof"]) if current is not None else None
    rearm = proof is Proof.ACCEPTED and expecting is not None and known is Proof.ACCEPTED
    if known is not None and known.rank >= proof.rank and not rearm:
        return False
    outcome.proofs.append(
        RecipientProof(delivery["id"], address, proof, when, provider_id, reason, expecting)
    )
    return True


def _label(db: sqlite3.Connection, delivery: sqlite3.Row) -> str:
    names = [row["name"] for row in documents.of_delivery(db, delivery["id"])]
    return ", ".join(names) or delivery["subject"] or f"message {delivery['id']}"
