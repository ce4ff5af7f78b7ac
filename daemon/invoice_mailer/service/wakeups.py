"""What the main thread sleeps on: signals, the other threads, and the ledger being written.

Nothing here wakes on a clock; the main loop passes the time of its next timer. Signals reach
the sleep through signal.set_wakeup_fd (a byte on a pipe; the Python handlers only set flags),
the other threads through `wake()`, a byte on the same pipe. The ledger through an inotify
watch on the state directory: every commit writes ledger.db-wal, ours and the CLI's (`retry`,
`flush`, `dismiss`, `login`), and the CLI talks to the service through the ledger only. Where
inotify cannot be had, `ledger_watched` is False and the caller looks at the ledger every
second instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from pathlib import Path

from invoice_mailer.watch import inotify

log = logging.getLogger(__name__)

# After the ledger was written, its events are left in the kernel's queue (where the many
# writes of a burst merge) this long before the next wake-up: at most 10 a second.
LEDGER_GAP = 0.1
_LEDGER_EVENTS = inotify.IN_MODIFY | inotify.IN_CLOSE_WRITE | inotify.IN_CREATE | inotify.IN_ONLYDIR


class Wakeups:
    """Owns a pipe and, where it can, an inotify descriptor; `close()` releases them."""

    def __init__(self, state_dir: Path, ledger_name: str = "ledger.db") -> None:
        self._read_end, self._write_end = os.pipe()
        for fd in (self._read_end, self._write_end):
            os.set_blocking(fd, False)
        self._prefix = os.fsencode(ledger_name)
        self._quiet_until = 0.0
        self._signals_installed = False
        self._inotify: inotify.Inotify | None = None
        try:
            watch = inotify.Inotify()
        except OSError as exc:
            log.info("the ledger is looked at every second (no inotify: %s)", exc.strerror)
            return
        try:
            watch.add(state_dir, _LEDGER_EVENTS)
        except OSError as exc:
            watch.close()
            log.info("the ledger is looked at every second (cannot watch it: %s)", exc.strerror)
            return
        self._inotify = watch

    @property
    def ledger_watched(self) -> bool:
        return self._inotify is not None

    def catch_signals(self) -> None:
        """Let a signal end `wait()` (main thread only; elsewhere signals never come here)."""
        try:
            signal.set_wakeup_fd(self._write_end, warn_on_full_buffer=False)
        except ValueError:
            return
        self._signals_installed = True

    def wake(self) -> None:
        """From any thread: end the main thread's `wait()` now."""
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already: one is enough
            os.write(self._write_end, b"\0")

    def wait(self, timeout: float | None) -> bool:
        """Sleep until woken, or `timeout` seconds (None: no limit); True when the ledger was
        written meanwhile."""
        watched = [self._read_end]
        if self._inotify is not None:
            quiet = self._quiet_until - time.monotonic()
            if quiet > 0:
                timeout = quiet if timeout is None else min(timeout, quiet)
            else:
                watched.append(self._inotify.fd)
        ready, _write, _error = select.select(watched, [], [], _limited(timeout))
        if self._read_end in ready:
            self._drain()
        if self._inotify is None or self._inotify.fd not in ready:
            return False
        events = self._inotify.read()
        self._quiet_until = time.monotonic() + LEDGER_GAP
        return any(event.name.startswith(self._prefix) for event in events)

    def close(self) -> None:
        if self._signals_installed:
            signal.set_wakeup_fd(-1)
            self._signals_installed = False
        if self._inotify is not None:
            self._inotify.close()
        for fd in (self._read_end, self._write_end):
            os.close(fd)

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_end, 512):
                pass


def _limited(timeout: float | None) -> float | None:
    return None if timeout is None else max(0.0, timeout)
