"""The service: wires watch → intake → ledger → routing → delivery → archive, and nothing else.

Threads: the watcher's observer (only queue puts), the intake thread, the worker thread
(routing, sessions, building messages ahead, archive, alerts, in turn), the sender thread
(SMTP delivery only), whose loops are in service.threads, and the receipts thread (the sender's
mailbox over IMAP, receipts.stage; idle while receipts are off). The main thread, here, handles
signals, reloads, systemd notifications and the watcher's supervision. Stages talk only
through the ledger.

Idle, nothing wakes on a clock but the timers that must: the systemd watchdog (half of
WatchdogSec=), the watcher's supervision, the worker's look at the address book. The main
thread sleeps on service.wakeups (signals, a dying thread, the ledger being written: how a
`retry` or `flush` from the CLI is noticed at once), the others on their events.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.intake.events import Intake
from invoice_mailer.ledger import documents, pauses
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import PENDING_DELIVERY, DeliveryState, DocumentState
from invoice_mailer.receipts.stage import ReceiptsStage, imap_account
from invoice_mailer.service import logsetup
from invoice_mailer.service.lock import acquire_lock
from invoice_mailer.service.notify import Notifier
from invoice_mailer.service.osthreads import os_thread
from invoice_mailer.service.threads import Sender, ThreadEvents, Worker, make_transport, take_files
from invoice_mailer.service.trouble import EX_SOFTWARE, guarded
from invoice_mailer.service.wakeups import LEDGER_GAP, Wakeups
from invoice_mailer.watch.watcher import Watcher

log = logging.getLogger(__name__)

STATUS_COST_FACTOR = 50  # after counting for the status line, wait this many times what it cost
STATUS_INTERVAL = 1.0  # and at least this long
SUPERVISE_INTERVAL = 5.0  # the watcher's supervision: a dead observer, a replaced folder, rescans
LEDGER_LOOK = 1.0  # without inotify, how often the ledger is looked at (the CLI's `retry`...)
# After the ledger was written, it is looked at every LEDGER_GAP for this long: a commit becomes
# visible only after its fsync, which comes after the writes inotify reported.
LEDGER_FOLLOW = 1.0
# Stopping: how long to wait for the receipts thread, which may be connecting to a silent
# server. Everything it writes is one transaction or one renamed file: leaving it is safe.
RECEIPTS_JOIN = 5.0


class Service:
    """The running invoice-mailer; `run()` returns when asked to stop."""

    def __init__(self, config: Config, verbose: bool = False):
        self.config = config
        self.verbose = verbose
        self.events = ThreadEvents()
        self.reload_requested = threading.Event()
        self.notifier = Notifier.from_environment()
        self._lock_fd = acquire_lock(config.state_dir)
        storage.make_private(config.state_dir)  # before the ledger opens: its -wal takes its mode
        book = AddressBookSource(config.customers.address_book, config.customers.csv)
        book.load()
        self.worker = Worker(config, book, self.events)
        self.sender = Sender(config, make_transport(config, self.events.stop), self.events)
        self.receipts = ReceiptsStage(config, self.events.stop)  # decrypts the IMAP password
        self._threads: list[threading.Thread] = []
        self._wakeups: Wakeups | None = None
        self.failure: str | None = None  # why the service cannot go on: it exits EX_SOFTWARE

    def _fail(self, why: str) -> None:
        """The service cannot go on: stop everything, and exit EX_SOFTWARE for a restart."""
        self.failure = self.failure or why
        self.events.stop_all()
        if self._wakeups is not None:
            self._wakeups.wake()

    def run(self) -> int:
        config = self.config
        ledger = Ledger(config.state_dir)
        events = self.events
        intake = Intake(config, ledger, stopping=events.stop.is_set, on_taken=events.wake.set)
        intake.recover()
        watcher = Watcher(config.watch, intake.offer)
        intake.tracker.closes = watcher.reports_close
        log.info(
            "invoice-mailer starting: config %s; watching %s (%s); sending via %s:%d (%s)%s",
            config.source,
            config.watch.folder,
            watcher.reason,
            config.smtp.host,
            config.smtp.port,
            config.smtp.security,
            f"; receipts from {self.receipts.account.where}" if self.receipts.account else "",
        )
        watcher.start()
        wakeups = self._wakeups = Wakeups(config.state_dir)
        wakeups.catch_signals()  # a signal that came before is seen by the loop's first turn
        loops: list[tuple[str, Callable[..., None], tuple[object, ...]]] = [
            ("intake", os_thread(take_files, background=True), (intake, events.stop)),
            ("worker", os_thread(self.worker.loop, background=True), ()),
            ("sender", os_thread(self.sender.loop), ()),
            ("receipts", os_thread(self.receipts.loop), ()),
        ]
        self._threads = [
            threading.Thread(
                target=guarded(loop, events.stop, self._fail),
                args=args,
                name=name,
                daemon=name == "receipts",  # see RECEIPTS_JOIN
            )
            for name, loop, args in loops
        ]
        for thread in self._threads:
            thread.start()
        watcher.scan()  # with the intake already looking at what it names
        self.notifier.ready()
        try:
            self._main_loop(watcher, ledger, wakeups)
        finally:
            self.notifier.stopping()
            events.stop_all()
            intake.interrupt()
            self.receipts.interrupt()
            watcher.stop()
            for thread in self._threads:
                thread.join(RECEIPTS_JOIN if thread.daemon else None)
                if thread.is_alive():
                    log.warning("the %s thread is still waiting on its server; not waited for",
                                thread.name)  # fmt: skip
            ledger.close()
            wakeups.close()
            os.close(self._lock_fd)
        if self.failure:
            log.critical("invoice-mailer stopped on an internal failure: %s", self.failure)
            return EX_SOFTWARE
        log.info("invoice-mailer stopped")
        return 0

    def _main_loop(self, watcher: Watcher, ledger: Ledger, wakeups: Wakeups) -> None:
        """Sleep until a signal, another thread, the ledger or one of the timers wants us."""
        ping_every = self.notifier.watchdog_interval()  # half of WatchdogSec=
        rescan = watcher.config.rescan  # the supervision runs the rescans: at least that often
        supervise_every = min(SUPERVISE_INTERVAL, rescan) if rescan > 0 else SUPERVISE_INTERVAL
        status_line = StatusLine(ledger, self.notifier)
        now = time.monotonic()
        next_ping, next_supervise = now, now + supervise_every
        next_look, follow_until, seen_version = now, now + LEDGER_FOLLOW, -1
        while not self.events.stop.is_set():
            now = time.monotonic()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            if now >= next_supervise:
                watcher.supervise(now)
                next_supervise = now + supervise_every
            if ping_every and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + ping_every
            if now >= next_look:
                version = ledger.data_version()  # changes when another connection commits
                if version != seen_version:
                    seen_version = version
                    self.events.wake.set()  # the worker looks: perhaps a `retry` or `flush`
                if not wakeups.ledger_watched:
                    next_look = now + LEDGER_LOOK
                else:
                    next_look = now + LEDGER_GAP if now < follow_until else math.inf
                if (status_due := status_line.update()) is not None:
                    next_look = min(next_look, status_due)
            if not all(thread.is_alive() for thread in self._threads):
                self.failure = self.failure or "a service thread ended unexpectedly"
                break
            timers = [next_supervise, next_look, next_ping if ping_every else math.inf]
            if wakeups.wait(min(timers) - time.monotonic()):
                next_look = time.monotonic()
                follow_until = next_look + LEDGER_FOLLOW

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.config.source)
            make_transport(config)  # proves the key and the password before switching
            account = imap_account(config, self.events.stop.wait)  # and the mailbox's login
            book = AddressBookSource(config.customers.address_book, config.customers.csv)
            book.load()
        except InvoiceMailerError as exc:
            log.error("reload refused, the previous configuration stays in force:\n%s", exc)
        else:
            if config.watch != self.config.watch or config.state_dir != self.config.state_dir:
                log.warning("watch: and state_dir changes take effect after a restart")
                config = replace(config, watch=self.config.watch, state_dir=self.config.state_dir)
            self.config = config
            logsetup.configure(config.log.level, self.verbose)
            self.worker.reload(config, book)
            self.sender.reload(config)
            self.receipts.reload(config, account)
            self.events.wake_sender.set()
            self.events.wake.set()
            log.info("configuration reloaded from %s", config.source)
        self.notifier.ready()

    def install_signal_handlers(self) -> None:
        def terminate(signum: int, _frame: object) -> None:
            log.info(
                "received %s: finishing the message in flight, then stopping",
                signal.Signals(signum).name,
            )
            self.events.stop_all()

        def hangup(_signum: int, _frame: object) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        signal.signal(signal.SIGHUP, hangup)


class StatusLine:
    """The one-line summary systemd shows (`systemctl status`: STATUS=), kept current cheaply.

    Counts the ledger only after another connection committed (PRAGMA data_version), at most
    once a second, and spends at most ~2 % of a core on it in a busy burst (a million rows take
    ~0.2 s)."""

    def __init__(self, ledger: Ledger, notifier: Notifier):
        self.ledger = ledger
        self.notifier = notifier
        self.text = ""
        self._seen_version = -1
        self._next_count = 0.0

    def update(self) -> float | None:
        """Count again if another connection committed; when that has to wait (the cost
        throttle), the monotonic time to call again; None when the line is up to date."""
        version, now = self.ledger.data_version(), time.monotonic()
        if version == self._seen_version:
            return None
        if now < self._next_count:
            return self._next_count
        counts = self.ledger.counts()
        self._seen_version = version
        cost = time.monotonic() - now
        self._next_count = now + max(STATUS_INTERVAL, STATUS_COST_FACTOR * cost)
        docs, deliveries = counts["documents"], counts["deliveries"]
        waiting = sum(deliveries.get(state, 0) for state in PENDING_DELIVERY)
        failed = documents.count_failed(self.ledger.db)
        text = (
            f"{deliveries.get(DeliveryState.SENT, 0)} sent, {waiting} waiting, "
            f"{docs.get(DocumentState.HELD, 0)} held, {failed} failed"
        )
        if pauses.current(self.ledger.db) is not None:
            text += "; sending paused"
        if text != self.text:
            self.text = text
            self.notifier.status(text)
        return None


def run_service(config_file: Path, verbose: bool) -> int:
    os.umask(storage.UMASK)  # also under a unit or a shell that says 022
    config = load_config(config_file)
    logsetup.configure(config.log.level, verbose)
    service = Service(config, verbose)
    service.install_signal_handlers()
    return service.run()
