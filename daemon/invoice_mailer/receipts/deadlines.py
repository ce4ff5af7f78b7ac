"""Receipts that should have come and did not: a PEC provider answers every message it takes
with an accettazione (receipts.accept_within), and a certified recipient's provider with an
avvenuta consegna or a failure (receipts.deliver_within). Each absence is told to the admin
once; a receipt that comes later still counts.
"""

from __future__ import annotations

import logging
import time

from invoice_mailer.config.model import Config
from invoice_mailer.ledger import delivery_recipients, documents, notices
from invoice_mailer.ledger.database import Ledger

log = logging.getLogger(__name__)

BATCH = 500


def tell_overdue(config: Config, ledger: Ledger, now: float | None = None) -> int:
    """Notices for every overdue receipt (one per message for an accettazione); how many."""
    now = time.time() if now is None else now
    told = 0
    while rows := delivery_recipients.overdue(ledger.db, now, BATCH):
        texts: dict[tuple[int, str], str] = {}
        for row in rows:
            label = _label(ledger, row["delivery_id"])
            if row["expecting"] == "accettazione":
                texts[(row["delivery_id"], "")] = (
                    f"no accettazione for {label} (Message-ID {row['message_id']}) "
                    f"{_hours(config.receipts.accept_within)} after it was sent: the PEC "
                    "provider may not have taken it. Look in the mailbox's Sent folder, and "
                    "check that receipts.imap.folders names the folder where receipts arrive"
                )
            else:
                texts[(row["delivery_id"], row["address"])] = (
                    f"no avvenuta consegna for {label} to {row['address']} "
                    f"{_hours(config.receipts.deliver_within)} after the accettazione "
                    f"(Message-ID {row['message_id']}): its provider has confirmed nothing; "
                    "ask the recipient, or look for a receipt in the mailbox"
                )
        with ledger.transaction() as db:
            for row in rows:
                delivery_recipients.stop_expecting(db, row["delivery_id"], row["address"])
            for text in texts.values():
                notices.add(db, now, text)
        for text in texts.values():
            log.warning("%s", text)
        told += len(texts)
        if len(rows) < BATCH:
            break
    return told


def _label(ledger: Ledger, delivery_id: int) -> str:
    names = [row["name"] for row in documents.of_delivery(ledger.db, delivery_id)]
    return ", ".join(names) or f"message {delivery_id}"


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"
