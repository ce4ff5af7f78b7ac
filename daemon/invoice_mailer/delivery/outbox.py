"""The outbox: each planned delivery is written once as the exact message to send (.eml).

Built on the first attempt and kept: a resend after a crash or a lost reply sends the very same
bytes with the same Message-ID, and the archive keeps what was really sent.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from invoice_mailer import addresses, storage
from invoice_mailer.config.model import Config
from invoice_mailer.delivery import messages, messagetext
from invoice_mailer.delivery.customertext import customer_signature, customer_text
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.ledger import deliveries, delivery_changes, documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import Purpose


def recipients_of(delivery: sqlite3.Row) -> tuple[str, ...]:
    """The RCPT list of a delivery: To, Cc and Bcc, each address once."""
    seen: dict[str, str] = {}
    for column in ("to_addrs", "cc_addrs", "bcc_addrs"):
        for address in json.loads(delivery[column]):
            seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def label_of(delivery: sqlite3.Row, carried: list[sqlite3.Row]) -> str:
    """A file name for the archived message that an admin recognises."""
    if delivery["purpose"] == Purpose.BUNDLE:
        return f"Tutto-a_sessione-{delivery['session_id']}_parte-{delivery['part'] or 1}"
    if delivery["purpose"] == Purpose.ALERT:
        return f"avviso-{delivery['id']}"
    stem = (
        messagetext.safe_filename(carried[0]["name"]) if carried else f"messaggio-{delivery['id']}"
    )
    return f"{stem}.copia" if delivery["purpose"] == Purpose.COPY else stem


# The worker thread builds messages ahead while the sender sends; one builds at a time, and
# whoever comes second finds the message made.
_BUILDING = threading.Lock()


@dataclass(frozen=True)
class _Made:
    """A message written durably into outgoing/, not yet recorded in the ledger."""

    delivery_id: int
    path: Path
    size: int
    subject: str
    body: str


def built(config: Config, delivery: sqlite3.Row) -> tuple[Path, int] | None:
    """The delivery's message if it is built (path and size), without waiting for a build."""
    if delivery["eml"]:
        path = config.state_dir / delivery["eml"]
        if path.exists():
            return path, delivery["size"]
    return None


def build(config: Config, ledger: Ledger, delivery: sqlite3.Row) -> tuple[Path, int]:
    """Write the delivery's message into outgoing/ (once) and record it; return path and size.

    Raises InvoiceMailerError when this message cannot be made (a template, an address, an
    unreadable document); OSError only for outgoing/ itself (disk full), which is not its fault.
    """
    with _BUILDING:
        fresh = deliveries.by_id(ledger.db, delivery["id"])
        delivery = fresh if fresh is not None else delivery
        ready = built(config, delivery)
        if ready is not None:
            return ready
        made = _write(config, ledger, delivery)
        _record(config, ledger, [made])
        return made.path, made.size


def prebuild(
    config: Config, ledger: Ledger, ahead: int, now: float, stopping: Callable[[], bool]
) -> int:
    """Build the next due messages before the sender reaches them, until `ahead` are built
    and waiting (a month-end burst then costs the sender only the SMTP round trips); problems
    are left for the sender.

    In one batch: the files are written, then made durable together (their data side by side,
    outgoing/ once), then one commit records them all; after a crash before it, nothing refers
    to them and the next build writes them again."""
    made: list[_Made] = []
    with _BUILDING:
        waiting = deliveries.built_unsent(ledger.db, ahead)
        # Refilled once half are gone: batches of half of `ahead`, not one per message sent.
        wanted = ahead - waiting if waiting <= ahead // 2 else 0
        for row in deliveries.due_unbuilt(ledger.db, now, wanted):
            if stopping():
                break
            try:
                made.append(_write(config, ledger, row))
            except InvoiceMailerError:
                continue  # the sender meets it again and records why it cannot be sent
        _record(config, ledger, made)
    return len(made)


def _record(config: Config, ledger: Ledger, made: list[_Made]) -> None:
    if not made:
        return
    storage.fsync_files([message.path for message in made])  # side by side, then their names
    storage.fsync_dir(config.state_dir / storage.OUTGOING)
    with ledger.transaction() as db:
        for message in made:
            delivery_changes.record_built(
                db,
                message.delivery_id,
                storage.relative(config.state_dir, message.path),
                message.size,
                message.subject,
                message.body,
            )


def _write(config: Config, ledger: Ledger, delivery: sqlite3.Row) -> _Made:
    """The delivery's message under its name in outgoing/, not yet durable (see _record)."""
    carried = documents.of_delivery(ledger.db, delivery["id"])
    subject, body = delivery["subject"], delivery["body"]
    signature = config.signature  # [Firma]: the bundle and the alerts are Italian
    if delivery["purpose"] in (Purpose.CUSTOMER, Purpose.COPY):
        if not carried and not subject:
            raise InvoiceMailerError(f"delivery {delivery['id']} has no document to attach")
        # In the customer's language; rendered once, at the first build: a rebuild keeps what
        # was rendered (and its language's signature).
        facts = documents.info_of(carried[0]) if carried else {}
        if not subject:
            subject, body = customer_text(config, facts)
        signature = customer_signature(config, facts)
    envelope = messages.Envelope(
        sender=config.sender.address,
        sender_name=config.sender.name,
        to=tuple(json.loads(delivery["to_addrs"])),
        cc=tuple(json.loads(delivery["cc_addrs"])),
        bcc=tuple(json.loads(delivery["bcc_addrs"])),
        subject=messagetext.header_text(subject),
        body=body,
        message_id=delivery["message_id"],
        date=datetime.datetime.now(datetime.UTC).astimezone(),
    )
    attachments = [
        messages.Attachment(
            path=config.state_dir / document["location"],
            filename=messagetext.safe_filename(document["name"]),
            kind=document["kind"],
        )
        for document in carried
        if delivery["purpose"] != Purpose.BUNDLE or not _too_big(config, document)
    ]
    outgoing = config.state_dir / storage.OUTGOING
    target = outgoing / f"{delivery['id']}.eml"
    partial = outgoing / f".{delivery['id']}.eml.part"
    size = _write_durably(partial, target, envelope, attachments, signature, sync=False)
    return _Made(delivery["id"], target, size, subject, body)


def copy_for_rest(config: Config, delivery: sqlite3.Row) -> str:
    """A copy of a delivery's built message for the recipients the server will take later:
    the same bytes, so they get the same message with the same Message-ID."""
    source = config.state_dir / delivery["eml"]
    target = storage.unique_path(config.state_dir / storage.OUTGOING, f"{delivery['id']}-rest.eml")
    with open(source, "rb") as stream:
        storage.copy_hashing(stream, target)
    storage.fsync_dir(target.parent)
    return storage.relative(config.state_dir, target)


def write_test_message(config: Config, address: str, folder: Path) -> tuple[Path, int]:
    """`invoice-mailer send-test`: one message with the current sender, signature and server."""
    smtp = config.smtp
    envelope = messages.Envelope(
        sender=config.sender.address,
        sender_name=config.sender.name,
        to=(addresses.check_address(address),),
        subject="invoice-mailer: messaggio di prova",
        body=(
            "Questo è un messaggio di prova di invoice-mailer, inviato con le impostazioni "
            f"attuali:\nserver {smtp.host}:{smtp.port} ({smtp.security}), "
            f"utente {smtp.username}.\n"
        ),
        message_id=addresses.new_message_id(config.sender.address),
        date=datetime.datetime.now(datetime.UTC).astimezone(),
    )
    target = folder / "send-test.eml"
    partial = folder / ".send-test.eml.part"
    size = _write_durably(partial, target, envelope, [], config.signature, sync=True)
    return target, size


def _write_durably(
    partial: Path,
    target: Path,
    envelope: messages.Envelope,
    attachments: list[messages.Attachment],
    signature: str,
    *,
    sync: bool,
) -> int:
    """The whole message or nothing under `target`; its size."""
    return storage.write_durably(
        target,
        lambda out: messages.write_message(envelope, attachments, signature, out),
        partial,
        sync=sync,
    )


def _too_big(config: Config, document: sqlite3.Row) -> bool:
    """A bundle reports an oversized document in its body instead of attaching it."""
    return messages.encoded_length(document["size"]) > config.smtp.max_message_size
