"""Unconfirmed messages: the reply to the final "." was lost twice, so only the mailbox can
tell whether they arrived. After looking, the admin either sends one again (`retry ID`) or
says it arrived (`dismiss ID`); the service itself never does either.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from invoice_mailer.config.model import Config
from invoice_mailer.errors import NothingMatched
from invoice_mailer.ledger import deliveries, delivery_changes
from invoice_mailer.ledger.database import Ledger


def resend(db: sqlite3.Connection, document_id: int, label: str, now: float) -> list[str]:
    """The document's unconfirmed messages go once more, same Message-ID and bytes (the
    recipient's system can tell a copy); a lost reply again makes them unconfirmed again."""
    done = []
    for message in deliveries.unconfirmed_of(db, document_id):
        delivery_changes.send_again(db, message["id"], now)
        done.append(
            f"{label}: the unconfirmed {message['purpose']} message, same Message-ID "
            f"{message['message_id']}"
        )
    return done


def confirm_arrival(
    config: Config, document_id: int, note: str, clock: Callable[[], float] = time.time
) -> list[str]:
    """The admin saw the document's unconfirmed messages arrive (the Sent folder, a PEC
    accettazione): they count as sent. Empty when the document has none."""
    if not (config.state_dir / "ledger.db").exists():
        raise NothingMatched(f"nothing to dismiss: no ledger in {config.state_dir} yet")
    done = []
    why = f"unconfirmed by the server; its arrival confirmed by hand: {note.strip()}"
    with Ledger(config.state_dir) as ledger, ledger.transaction() as db:
        now = clock()
        for message in deliveries.unconfirmed_of(db, document_id):
            delivery_changes.confirm_sent(db, message["id"], now, why)
            done.append(
                f"#{document_id}: the {message['purpose']} message "
                f"{message['message_id']} counts as sent"
            )
    return done
