"""The one-line summary systemd shows (`systemctl status`: STATUS=), kept current cheaply."""

from __future__ import annotations

import time

from invoice_mailer.ledger import documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import PENDING_DELIVERY, DeliveryState, DocumentState
from invoice_mailer.service.notify import Notifier

COST_FACTOR = 50  # after counting, wait this many times what the count cost


class StatusLine:
    """Counts the ledger only after another connection committed (PRAGMA data_version), and
    spends at most ~2 % of a core on it in a busy burst (a million rows take ~0.2 s)."""

    def __init__(self, ledger: Ledger, notifier: Notifier):
        self.ledger = ledger
        self.notifier = notifier
        self.text = ""
        self._seen_version = -1
        self._next_count = 0.0

    def update(self) -> None:
        version, now = self.ledger.data_version(), time.monotonic()
        if version == self._seen_version or now < self._next_count:
            return
        counts = self.ledger.counts()
        self._seen_version = version
        self._next_count = now + COST_FACTOR * (time.monotonic() - now)
        docs, deliveries = counts["documents"], counts["deliveries"]
        waiting = sum(deliveries.get(s, 0) for s in PENDING_DELIVERY)
        failed = documents.count_failed(self.ledger.db)
        text = (
            f"{deliveries.get(DeliveryState.SENT, 0)} sent, {waiting} waiting, "
            f"{docs.get(DocumentState.HELD, 0)} held, {failed} failed"
        )
        if self.ledger.one("SELECT 1 FROM pauses") is not None:
            text += "; sending paused"
        if text != self.text:
            self.text = text
            self.notifier.status(text)
