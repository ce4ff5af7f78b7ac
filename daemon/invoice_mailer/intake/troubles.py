"""The intake's troubles that are not a file's fault: the disk full, the ledger busy, the spool
gone. Each kind is logged once until a batch is taken again (thousands of files waiting must
not write thousands of lines); after one, the spool is repaired (a moved file may lack its
row, the folder itself may be gone) before the intake's next step, and again later while that
fails. The files concerned are retried by the intake.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from invoice_mailer.intake.taking import Taker

log = logging.getLogger(__name__)


class Troubles:
    """What the intake met since it last took a batch; used from the intake's thread only."""

    def __init__(self, taker: Taker, clock: Callable[[], float], retry_delay: float):
        self.taker = taker
        self.clock = clock
        self.retry_delay = retry_delay
        self.repair_at: float | None = None  # after an error: adopt what it left in the spool
        self._kinds: set[str] = set()  # logged since the last success

    def report(self, path: str, exc: Exception) -> None:
        """Log each kind of error once until things work again; the file is retried later."""
        if self.repair_at is None:
            self.repair_at = self.clock()
        kind = f"{type(exc).__name__}:{getattr(exc, 'errno', None) or exc}"
        why = getattr(exc, "strerror", None) or str(exc)
        if kind in self._kinds:
            log.debug("cannot take %s right now: %s", path, why)
            return
        self._kinds.add(kind)
        unexpected = not isinstance(exc, (OSError, sqlite3.Error))
        log.error(
            "cannot take %s right now: %s; trying again every %d s",
            path, why, self.retry_delay, exc_info=unexpected,
        )  # fmt: skip

    def over(self) -> None:
        """A batch was taken: the next error is news again."""
        self._kinds.clear()

    def repair_if_due(self, now: float) -> None:
        """After an error, a moved file may lack its row, or the spool itself may be gone."""
        if self.repair_at is None or now < self.repair_at:
            return
        try:
            self.taker.recover()
        except (OSError, sqlite3.Error) as exc:
            self.repair_at = self.clock() + self.retry_delay
            self.report(str(self.taker.spool), exc)
        else:
            self.repair_at = None
