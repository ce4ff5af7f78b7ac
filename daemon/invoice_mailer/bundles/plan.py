"""The accountant's bundle, planned without touching the ledger: one line per document, and
the split into numbered parts that each fit smtp.max_message_size and all_to.max_attachments.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from invoice_mailer.bundles import italian
from invoice_mailer.config.model import Config
from invoice_mailer.config.texts import TemplatesConfig
from invoice_mailer.delivery import messages, messagetext
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.ledger.documents import info_of
from invoice_mailer.ledger.states import DeliveryState, DocumentState

log = logging.getLogger(__name__)

KIND_LABELS = {"pdf": "PDF", "xml": "XML", "p7m": "XML firmato"}
# Room for what the estimate cannot see (subject, dates, the part number) in a part's text.
TEXT_MARGIN = 512


@dataclass(frozen=True)
class Member:
    """One document of a session, as the bundle shows it."""

    id: int
    name: str
    kind: str
    size: int
    doc: str
    number: str
    date: str
    customer_name: str
    status: str  # what happened to its customer delivery, in Italian
    attachable: bool  # False: listed but not attached (too large, or refused at intake)

    def line(self) -> str:
        """One line of the body: what the file is, whose it is, what happened to it."""
        kind = KIND_LABELS.get(self.kind, self.kind.upper())
        invoice = f"{self.doc} n. {self.number}" if self.number else self.doc
        if self.date:
            invoice += f" del {self.date}"
        parts = [f"- {messagetext.safe_filename(self.name)} ({kind})", invoice]
        if self.customer_name:
            parts.append(self.customer_name)
        parts.append(self.status)
        return " - ".join(messagetext.header_text(p) for p in parts)


def too_big(config: Config, size: int) -> bool:
    """Encoded (base64) larger than the message limit: no message can carry it.

    The same rule as outbox's, so what the body says matches what is attached."""
    return messages.encoded_length(size) > config.smtp.max_message_size


def customer_status(state: str, reason: str | None, deliveries: Sequence[dict]) -> str:
    """What happened to a document's customer delivery, for the accountant.

    `deliveries`: its customer rows (state, to_addrs JSON, last_error) at closing time.
    """
    if state == DocumentState.HELD:
        return f"in attesa: {italian.reason(reason)}"
    if state == DocumentState.FAILED:
        return f"non inviato: {italian.reason(reason)}"
    # closing.py: a later file was sent, or it was closed by hand
    if state in (DocumentState.SUPERSEDED, DocumentState.DISMISSED):
        later = re.search(r"superseded by document (\d+)", reason or "")
        return f"sostituito dal documento {later[1]}" if later else "non inviato: chiuso a mano"
    failed = [d for d in deliveries if d["state"] == DeliveryState.FAILED]
    if failed:
        return f"non inviato: {italian.reason(failed[0]['last_error'])}"
    sent: list[str] = []
    for delivery in deliveries:
        if delivery["state"] == DeliveryState.SENT:
            sent += [a for a in json.loads(delivery["to_addrs"]) if a not in sent]
    # A "retried" row is history: its replacement row says what happens now.
    pending = any(d["state"] not in (DeliveryState.SENT, DeliveryState.RETRIED) for d in deliveries)
    if sent and not pending:
        return "inviato a " + ", ".join(sent)
    if deliveries or state in (DocumentState.TAKEN, DocumentState.WAITING):
        return "in coda"
    if reason:  # customers.unknown: skip
        return f"non inviato: {italian.reason(reason)}"
    return "non previsto per il cliente"


def member_of(config: Config, row: sqlite3.Row, deliveries: Sequence[dict], joined: bool) -> Member:
    """A document row as the bundle lists it. `joined`: False for a file refused at intake,
    listed so the accountant sees the gap in the numbering explained, never attached."""
    facts = info_of(row)
    limit = config.smtp.max_message_size
    encoded = messages.encoded_length(row["size"])
    if not joined:
        status = f"non inviato: scartato all'arrivo ({italian.reason(row['reason'])})"
    elif too_big(config, row["size"]):
        status = f"non inviato: troppo grande ({_n(encoded)} byte in base64, limite {_n(limit)})"
    else:
        status = customer_status(row["state"], row["reason"], deliveries)
    return Member(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        size=row["size"],
        doc=facts.get("doc", "Documento"),
        number=facts.get("number") or row["number"] or "",
        date=facts.get("date", ""),
        customer_name=facts.get("customer_name") or row["customer_name"] or "",
        status=status,
        attachable=joined and not too_big(config, row["size"]),
    )


def _n(number: int) -> str:
    """Thousands with dots, as an Italian reader writes them."""
    return f"{number:,}".replace(",", ".")


def text_chars(config: Config, members: Sequence[Member]) -> int:
    """An upper bound of the characters of a part's subject, body and signature."""
    templates = config.templates
    lines = sum(len(m.line()) + 1 for m in members)
    fixed = len(templates.all_to_subject) + len(templates.all_to_body) + len(config.signature)
    return fixed + lines + TEXT_MARGIN


def split(config: Config, members: Sequence[Member]) -> list[list[Member]]:
    """Members into parts, in order: a new part when the next one would pass the size or
    attachment limit. A document too large to attach rides (listed only) in the part it falls in;
    one that fits only alone gets a part of its own."""
    limit, most = config.smtp.max_message_size, config.all_to.max_attachments
    parts: list[list[Member]] = [[]]
    for member in members:
        current = parts[-1]
        attached = [m for m in current if m.attachable]
        if member.attachable and attached:
            sizes = [m.size for m in attached] + [member.size]
            estimate = messages.estimated_size(
                sizes, text_chars=text_chars(config, [*current, member])
            )
            if len(sizes) > most or estimate > limit:
                parts.append([])
        parts[-1].append(member)
    return [part for part in parts if part]


def render(
    config: Config, members: Sequence[Member], closing_date: str, part: int, parts: int
) -> tuple[str, str]:
    """Subject and body of one part; "parte i di n" is added to the subject when split (unless
    the template already places {part}). {count} and {files} are the files attached, so the
    subject, the body and the attachments agree; the others follow apart, with the reason."""
    attached = [m for m in members if m.attachable]
    fields = {
        "date": closing_date,
        "count": len(attached),
        "files": "\n".join(m.line() for m in attached),
        "sender_name": config.sender.name,
        "part": part,
        "parts": parts,
    }
    templates = config.templates
    try:
        subject = messagetext.render(templates.all_to_subject, fields)
        body = messagetext.render(templates.all_to_body, fields)
    except InvoiceMailerError as exc:
        # The loader checked the field names; whatever slips through must not lose the bundle.
        log.error("%s; using the default all_to templates", exc)
        templates = TemplatesConfig()
        subject = messagetext.render(templates.all_to_subject, fields)
        body = messagetext.render(templates.all_to_body, fields)
    if parts > 1 and "{part" not in templates.all_to_subject:
        subject += f" - parte {part} di {parts}"
    apart = [m for m in members if not m.attachable]
    if apart:
        body = body.rstrip("\n") + f"\n\nNon allegati ({len(apart)}):\n"
        body += "".join(m.line() + "\n" for m in apart)
    return messagetext.header_text(subject), body
