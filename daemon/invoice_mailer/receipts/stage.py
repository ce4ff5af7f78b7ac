"""The receipts thread: reads the sender's mailbox (IDLE where the server offers it, else every
receipts.poll), hands each new message to the ProofKeeper once, and tells the admin about
receipts that are late. The mailbox unreachable or the login refused: retried with a growing
pause and told to the admin once; sending never waits for any of it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Callable

from invoice_mailer.config import credentials
from invoice_mailer.config.model import Config
from invoice_mailer.errors import describe, shown
from invoice_mailer.ledger import imap_cursors, notices
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.receipts.deadlines import tell_overdue
from invoice_mailer.receipts.imapconnect import ImapAccount, MailboxError, Security
from invoice_mailer.receipts.imaplogins import sender_login
from invoice_mailer.receipts.mailbox import Cursor, Mailbox
from invoice_mailer.receipts.recording import ProofKeeper
from invoice_mailer.service.trouble import RETRY_TROUBLE, Trouble

log = logging.getLogger(__name__)

MAX_PAUSE = 900.0  # the longest pause between two tries of an unreachable mailbox


def imap_account(config: Config, wait: Callable[[float], bool] | None = None) -> ImapAccount | None:
    """The mailbox to read, its password decrypted (SecretError when it cannot be, as for a
    missing key file with XOAUTH2); None while receipts are off. `wait` pauses between the
    quick tries of a token refresh and returns True when the service stops."""
    receipts = config.receipts
    imap = receipts.imap
    if not receipts.enabled or imap.host is None:
        return None
    password = credentials.imap_password(config)
    return ImapAccount(
        host=imap.host,
        username=imap.username,
        password=password.reveal() if password else "",
        security=Security(imap.security),
        port=imap.port,
        ca_file=imap.ca_file,
        timeout=imap.timeout,
        max_message_size=imap.max_message_size,
        login=None if password else sender_login(config, wait),
    )


def check_mailbox(config: Config) -> str:
    """`check --smtp`: log in to the mailbox and open each folder, reading nothing; what was
    found, or MailboxError saying what to do."""
    account = imap_account(config)
    if account is None:
        return "receipts are off (receipts.enabled)"
    with Mailbox(account) as box:
        for folder in config.receipts.imap.folders:
            box.uidvalidity(folder)  # opens it read-only, or says it cannot be opened
        idle = "IDLE" if box.supports_idle else f"no IDLE: polled every {config.receipts.poll:g} s"
    folders = ", ".join(config.receipts.imap.folders)
    login = f"logged in as {account.username} with {account.describe_login()}"
    return f"{account.where}, {login}, folders {folders} ({idle})"


class ReceiptsStage:
    """One thread's worth: `loop()` until `stop`; `reload()` and `interrupt()` from the main
    thread."""

    def __init__(self, config: Config, stop: threading.Event):
        self.config = config
        self.account = imap_account(config, stop.wait)
        self.stop = stop
        self.pending: tuple[Config, ImapAccount | None] | None = None
        # reload() and interrupt() end any wait at once with a byte on this pair: the thread
        # sleeps on it (with the mailbox's socket while idling), never in slices of a second.
        self._nudged, self._nudge = socket.socketpair()
        for end in (self._nudged, self._nudge):
            end.setblocking(False)
        self._box: Mailbox | None = None
        self._failures = 0
        self._told = False

    def reload(self, config: Config, account: ImapAccount | None) -> None:
        """Hand a reloaded config over; the loop reconnects between two waits."""
        self.pending = (config, account)
        self._wake()

    def interrupt(self) -> None:
        """Stopping: a read that waits on the server ends now rather than at its timeout."""
        self._wake()
        box = self._box
        if box is not None:
            box.hang_up()

    def loop(self) -> None:
        ledger = Ledger(self.config.state_dir)
        keeper = ProofKeeper(self.config, ledger)
        trouble = Trouble("read the receipts")
        try:
            while not self.stop.is_set():
                if self.pending is not None:
                    (self.config, self.account), self.pending = self.pending, None
                    keeper.config = self.config
                if self.account is None:  # receipts off: nothing to do until a reload or a stop
                    self._sleep(None)
                    continue
                try:
                    self._session(self.account, keeper, ledger)
                    trouble.over()
                except MailboxError as exc:
                    if self.stop.is_set():
                        break
                    self._unreachable(exc, ledger)
                except Exception as exc:  # the disk or the ledger; or a bug: GiveUp after 10
                    if self.stop.is_set():
                        break
                    trouble.report(exc)
                    self.stop.wait(RETRY_TROUBLE)
        finally:
            ledger.close()

    # -- one connection -------------------------------------------------------------------

    def _session(self, account: ImapAccount, keeper: ProofKeeper, ledger: Ledger) -> None:
        with Mailbox(account) as box:
            self._box = box
            try:
                while not self.stop.is_set() and self.pending is None:
                    self._read_all(box, keeper, ledger)
                    self._reachable(account)
                    tell_overdue(self.config, ledger)
                    self._wait(box)
            finally:
                self._box = None

    def _read_all(self, box: Mailbox, keeper: ProofKeeper, ledger: Ledger) -> None:
        cursors = imap_cursors.every(ledger.db)
        for folder in self.config.receipts.imap.folders:
            known = cursors.get(folder)
            cursor = Cursor(folder, *known) if known else None
            started, before = time.monotonic(), dict(keeper.counts)
            try:
                for fetched in box.messages(folder, cursor):
                    if self.stop.is_set():
                        break
                    try:
                        keeper.look_at(fetched)
                    except (OSError, sqlite3.Error):
                        raise  # our disk or ledger: the message is read again next time
                    except Exception as exc:  # a bug on one message must not stop the mailbox
                        log.error(
                            "%s UID %d could not be looked at (%s); it is skipped",
                            folder, fetched.uid, describe(exc), exc_info=shown(exc),
                        )  # fmt: skip
            finally:
                keeper.flush()
            found = keeper.counts["receipts"] - before["receipts"]
            ignored = keeper.counts["ignored"] - before["ignored"]
            if found or ignored:
                log.info(
                    "%s: %d new message(s) read in %.1f s: %d about our messages, %d ignored",
                    folder, found + ignored, time.monotonic() - started, found, ignored,
                )  # fmt: skip

    def _wait(self, box: Mailbox) -> None:
        """Until the first folder changes (IDLE), or receipts.poll passes, or stop or reload."""
        deadline = time.monotonic() + self.config.receipts.poll
        folder = self.config.receipts.imap.folders[0]
        if box.supports_idle:
            if box.changed_since_read(folder):
                return
            with box.idling() as idle:
                while not self.stop.is_set() and self.pending is None:
                    left = deadline - time.monotonic()
                    if left <= 0 or idle.wait(left, wake=self._nudged):
                        return
                    self._drain()
            return
        while not self.stop.is_set() and self.pending is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._sleep(left)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full already (one byte is enough), or closed
            self._nudge.send(b"!")

    def _sleep(self, seconds: float | None) -> None:
        """Until reload() or interrupt(), or `seconds` (None: no limit)."""
        select.select([self._nudged], [], [], seconds)
        self._drain()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._nudged.recv(512):
                pass

    # -- the mailbox unreachable ----------------------------------------------------------

    def _unreachable(self, exc: MailboxError, ledger: Ledger) -> None:
        """Tried again at once (a dropped connection), then with a doubling pause; the admin
        hears of it once, at the second failure in a row."""
        self._failures += 1
        poll = max(1.0, self.config.receipts.poll)
        pause = 1.0 if self._failures == 1 else min(MAX_PAUSE, poll * 2 ** (self._failures - 2))
        if self._failures >= 2 and not self._told:
            text = (
                f"the mailbox cannot be read for receipts: {exc}. Sending goes on; receipts "
                "wait in the mailbox and are read when it can be read again"
            )
            try:
                with ledger.transaction() as db:
                    notices.add(db, time.time(), text)
                self._told = True
            except sqlite3.Error as error:
                log.error("cannot record the notice about the mailbox: %s", error)
            log.error("%s; next try in %.0f s", text, pause)
        else:
            log.warning("cannot read the mailbox: %s; next try in %.0f s", exc, pause)
        self._sleep(pause)  # a reload (new password) tries at once

    def _reachable(self, account: ImapAccount) -> None:
        if self._told:
            log.info("the mailbox %s can be read again", account.where)
        self._failures, self._told = 0, False
