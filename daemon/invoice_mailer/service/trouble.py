"""How the service's loops meet errors: retried quietly when the disk or the ledger refuses,
retried loudly (with the traceback) when nobody foresaw them, and given up on, with a non-zero
exit status for systemd, when they keep coming."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from invoice_mailer.errors import describe, shown

log = logging.getLogger("invoice_mailer.service")

RETRY_TROUBLE = 5  # seconds between tries while the disk or the ledger refuses
# sysexits.h EX_SOFTWARE: a thread died or a loop keeps failing. Not 0, so that systemd's
# Restart=on-failure brings the service back (RestartPreventExitStatus names only 78).
EX_SOFTWARE = 70
UNEXPECTED_LIMIT = 10  # unexpected failures of a whole loop in a row before the service gives up


class GiveUp(Exception):
    """A loop failed unexpectedly UNEXPECTED_LIMIT times in a row: only a restart can help."""


class Trouble:
    """An error a loop meets again and again (disk full, ledger locked): logged once, until it
    changes or the work succeeds again; the loop retries every RETRY_TROUBLE seconds.

    An unexpected error (a bug, an input nobody foresaw) is logged with its traceback each
    time; after UNEXPECTED_LIMIT of them in a row the loop gives up (GiveUp)."""

    def __init__(self, doing: str):
        self.doing = doing
        self.last = ""
        self.unexpected = 0

    def report(self, exc: BaseException) -> None:
        if not isinstance(exc, (OSError, sqlite3.Error)):
            self.unexpected += 1
            log.error(
                "unexpected error while trying to %s (%d in a row): %s; retrying in %d s",
                self.doing, self.unexpected, describe(exc), RETRY_TROUBLE, exc_info=shown(exc),
            )  # fmt: skip
            if self.unexpected >= UNEXPECTED_LIMIT:
                raise GiveUp(f"cannot {self.doing}: {describe(exc)}") from None
        elif str(exc) != self.last:
            log.error(
                "cannot %s right now: %s; retrying every %d s", self.doing, exc, RETRY_TROUBLE
            )
        self.last = str(exc)

    def over(self) -> None:
        self.last = ""
        self.unexpected = 0


def guarded(
    loop: Callable[..., None], stop: threading.Event, fail: Callable[[str], None]
) -> Callable[..., None]:
    """A thread's loop that never ends silently: a crash, or an end before `stop`, calls
    `fail` (the service stops with a non-zero status, so that systemd restarts it)."""

    def run(*args: object) -> None:
        name = threading.current_thread().name
        try:
            loop(*args)
        except BaseException as exc:  # the last line of defence: logged, then a restart
            log.critical(
                "the %s thread died: %s; stopping, to be restarted",
                name, describe(exc), exc_info=shown(exc),
            )  # fmt: skip
            fail(f"the {name} thread died: {describe(exc)}")
        else:
            if not stop.is_set():
                log.critical("the %s thread ended unexpectedly; stopping, to be restarted", name)
                fail(f"the {name} thread ended unexpectedly")

    return run
