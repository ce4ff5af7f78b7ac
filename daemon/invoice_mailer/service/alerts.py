"""Alerts: what the admin should hear about (failures, held documents, a paused queue),
batched into one short plain-text message at most every `alerts.interval`."""

from __future__ import annotations

import time
from collections.abc import Callable

from invoice_mailer.addresses import new_message_id
from invoice_mailer.config.model import Config
from invoice_mailer.ledger import deliveries, delivery_changes, notices
from invoice_mailer.ledger.database import Ledger

MAX_LINES = 50


class Alerts:
    """Turns unsent notices into an alert delivery; alerts about alerts are never made."""

    def __init__(self, config: Config, ledger: Ledger, clock: Callable[[], float] = time.time):
        self.config = config
        self.ledger = ledger
        self.clock = clock

    def step(self) -> None:
        to = self.config.alerts.to
        if not to:
            return
        now = self.clock()
        last = deliveries.last_alert_at(self.ledger.db)
        if last is not None and now - last < self.config.alerts.interval:
            return
        unsent = notices.unsent(self.ledger.db)
        if not unsent:
            return
        lines = [f"- {row['text']}" for row in unsent[:MAX_LINES]]
        if len(unsent) > MAX_LINES:
            lines.append(f"- … and {len(unsent) - MAX_LINES} more (see `invoice-mailer status`)")
        body = (
            f"invoice-mailer on {self.config.sender.address} needs attention:\n\n"
            + "\n".join(lines)
            + "\n\n`invoice-mailer status` shows every document and what to do next.\n"
        )
        subject = f"invoice-mailer: {len(unsent)} problem(s) to look at"
        with self.ledger.transaction() as db:
            delivery_changes.plan_alert(
                db, [to], subject, body, new_message_id(self.config.sender.address), now
            )
            notices.mark_sent(db, unsent[-1]["id"], now)
