"""The service: wires watch → intake → ledger → routing → delivery → archive, and nothing else.

Threads: watchdog's observer (only queue puts), the intake thread, the worker thread
(routing, sessions, building messages ahead, archive, alerts, in turn), the sender thread
(SMTP delivery only), whose loops are in service.threads, and the receipts thread (the sender's
mailbox over IMAP, receipts.stage; idle while receipts are off). The main thread, here, handles
signals, reloads, systemd notifications and the watcher's supervision. Stages talk only
through the ledger.
"""

from __future__ import annotations

import logging
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
from invoice_mailer.service.threads import Sender, ThreadEvents, Worker, make_transport, take_files
from invoice_mailer.service.trouble import EX_SOFTWARE, guarded
from invoice_mailer.watch.watcher import Watcher

log = logging.getLogger(__name__)

STATUS_COST_FACTOR = 50  # after counting for the status line, wait this many times what it cost
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
        self.failure: str | None = None  # why the service cannot go on: it exits EX_SOFTWARE

    def _fail(self, why: str) -> None:
        """The service cannot go on: stop everything, and exit EX_SOFTWARE for a restart."""
        self.failure = self.failure or why
        self.events.stop_all()

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
        watcher.scan()
        loops: list[tuple[str, Callable[..., None], tuple[object, ...]]] = [
            ("intake", take_files, (intake, events.stop)),
            ("worker", self.worker.loop, ()),
            ("sender", self.sender.loop, ()),
            ("receipts", self.receipts.loop, ()),
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
        self.notifier.ready()
        try:
            self._main_loop(watcher, ledger)
        finally:
            self.notifier.stopping()
            events.stop_all()
            self.receipts.interrupt()
            watcher.stop()
            for thread in self._threads:
                thread.join(RECEIPTS_JOIN if thread.daemon else None)
                if thread.is_alive():
                    log.warning("the %s thread is still waiting on its server; not waited for",
                                thread.name)  # fmt: skip
            ledger.close()
            os.close(self._lock_fd)
        if self.failure:
            log.critical("invoice-mailer stopped on an internal failure: %s", self.failure)
            return EX_SOFTWARE
        log.info("invoice-mailer stopped")
        return 0

    def _main_loop(self, watcher: Watcher, ledger: Ledger) -> None:
        interval = self.notifier.watchdog_interval()
        next_ping = 0.0
        status_line = StatusLine(ledger, self.notifier)
        tick = min(1.0, interval or 1.0)  # idle, every wake-up counts: once a second is enough
        while not self.events.stop.wait(tick):
            now = time.monotonic()
            watcher.supervise(now)
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            if interval and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + interval
            status_line.update()
            if not all(thread.is_alive() for thread in self._threads):
                self.failure = self.failure or "a service thread ended unexpectedly"
                break

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

    Counts the ledger only after another connection committed (PRAGMA data_version), and
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
        self._next_count = now + STATUS_COST_FACTOR * (time.monotonic() - now)
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


def run_service(config_file: Path, verbose: bool) -> int:
    os.umask(storage.UMASK)  # also under a unit or a shell that says 022
    config = load_config(config_file)
    logsetup.configure(config.log.level, verbose)
    service = Service(config, verbose)
    service.install_signal_handlers()
    return service.run()
