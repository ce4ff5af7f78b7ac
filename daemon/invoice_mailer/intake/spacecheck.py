"""The free-space reserve of state_dir (watch.min_free_space): below it, intake takes nothing.

A full state_dir would break the ledger and the archive for every document. Files wait in the
export folder instead (nothing is lost); the admin hears it once, and again when it is over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from invoice_mailer.ledger import notices
from invoice_mailer.ledger.database import Ledger

log = logging.getLogger("invoice_mailer.intake")


class LowSpace(Exception):
    """Taking this file now would leave state_dir below its reserve: it waits in the folder."""


class LowSpaceReport:
    """Checks the reserve before each file, and says so once when it is crossed either way."""

    def __init__(self, state_dir: Path, reserve: int, ledger: Ledger):
        self.state_dir = state_dir
        self.reserve = reserve
        self.ledger = ledger
        self.low = False

    def check(self, incoming: int = 0) -> None:
        """Raise LowSpace unless `incoming` bytes more still leave the reserve free."""
        free = free_space(self.state_dir)
        if free - incoming >= self.reserve:
            if self.low:
                self.low = False
                log.warning("%s has %s free again: taking files again", self.state_dir, _mb(free))
            return
        if not self.low:
            self.low = True
            text = (
                f"{self.state_dir} has {_mb(free)} free, less than watch.min_free_space "
                f"({_mb(self.reserve)}) with the next file: new files wait in the export "
                "folder until space is freed (nothing is lost)"
            )
            # The admin's alert first, then the log line: once the line shows, the notice is
            # in the ledger (the log line stands alone if the ledger refuses).
            with contextlib.suppress(sqlite3.Error), self.ledger.transaction() as db:
                notices.add(db, time.time(), text)
            log.error("%s", text)
        raise LowSpace(self.state_dir)


def free_space(folder: Path) -> int:
    """Bytes an unprivileged process may still write there (statvfs f_bavail)."""
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


def _mb(size: int) -> str:
    return f"{max(size, 0) / (1024 * 1024):,.0f} MB"
