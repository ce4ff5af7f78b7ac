"""The service: wires watch → intake → ledger → routing → delivery → archive, and nothing else.

Threads: watchdog's observer (only queue puts), the intake thread, the worker thread
(routing, sessions, building messages ahead, archive, alerts, in turn) and the sender thread
(SMTP delivery only). The main thread handles signals, systemd notifications and the
watcher's supervision. Stages talk only through the ledger.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.archive.archiver import Archive
from invoice_mailer.bundles.sessions import SessionKeeper
from invoice_mailer.config import credentials
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.dispatcher import Dispatcher
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.intake.events import Intake
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.routing.router import Router
from invoice_mailer.service import logsetup
from invoice_mailer.service.alerts import Alerts
from invoice_mailer.service.lock import acquire_lock
from invoice_mailer.service.notify import Notifier
from invoice_mailer.service.schedule import WorkerSchedule
from invoice_mailer.service.statusline import StatusLine
from invoice_mailer.service.trouble import EX_SOFTWARE, RETRY_TROUBLE, Trouble, guarded
from invoice_mailer.watch.watcher import Watcher

log = logging.getLogger(__name__)

# Messages built ahead of the sender: enough to keep it busy, few enough that a reload's new
# signature or templates reach the next messages soon (those already built keep their text).
BUILD_AHEAD = 8
HOUSEKEEPING_INTERVAL = 0.5  # sessions, alerts and the archive, at most this often
IDLE_PASS = 5.0  # when idle, a full pass of the worker this often (time-based work)
IDLE_PASS_CHECK = 1.0  # when idle, how often the worker asks the ledger whether anything changed


def make_transport(config: Config, stop: threading.Event | None = None) -> SmtpTransport:
    password = credentials.smtp_password(config.smtp)
    # smtplib would look up the fully qualified name on every connection (slow when DNS is
    # broken); the plain host name is what mail clients send in EHLO anyway.
    return SmtpTransport(
        config.smtp,
        password.reveal() if password else None,
        socket.gethostname() or "localhost",
        stop,  # SIGTERM ends a wait on a silent or trickling server within seconds
    )


class Service:
    """The running invoice-mailer; `run()` returns when asked to stop."""

    def __init__(self, config: Config, verbose: bool = False):
        self.config = config
        self.verbose = verbose
        self.stop = threading.Event()
        self.wake = threading.Event()  # the worker: something was taken, sent, or asked for
        self.wake_sender = threading.Event()  # the sender: something may be due
        self._recovered = threading.Event()
        self._sender_finished = threading.Event()
        self.reload_requested = threading.Event()
        self.notifier = Notifier.from_environment()
        self._lock_fd = acquire_lock(config.state_dir)
        storage.make_private(config.state_dir)  # before the ledger opens: its -wal takes its mode
        self.book = AddressBookSource(config.customers.address_book, config.customers.csv)
        self.book.load()
        self.transport = make_transport(config, self.stop)
        self._threads: list[threading.Thread] = []
        self._pending_worker: tuple[Config, AddressBookSource] | None = None
        self._pending_sender: Config | None = None
        self.failure: str | None = None  # why the service cannot go on: it exits EX_SOFTWARE

    # -- threads --------------------------------------------------------------------------

    def _fail(self, why: str) -> None:
        """The service cannot go on: stop everything, and exit EX_SOFTWARE for a restart."""
        self.failure = self.failure or why
        self.stop.set()
        self.wake.set()
        self.wake_sender.set()

    def _intake_loop(self, intake: Intake) -> None:
        trouble = Trouble("take files")
        while not self.stop.is_set():
            try:
                intake.step(max_wait=1.0)  # new events end the wait; wakes the worker per batch
                trouble.over()
            except Exception as exc:
                # Disk full, state directory read-only, ledger locked: nothing is lost (the
                # file stays in the export folder); log once and try again shortly.
                trouble.report(exc)
                self.stop.wait(RETRY_TROUBLE)

    def _worker_loop(self) -> None:
        """Routing, sessions, alerts, building messages ahead, and the archive."""
        ledger = Ledger(self.config.state_dir)
        archive = Archive(self.config, ledger)
        router = Router(self.config, ledger, self.book)
        sessions = SessionKeeper(self.config, ledger)
        alerts = Alerts(self.config, ledger)
        archive.recover()
        self._recovered.set()
        trouble = Trouble("work on the queue")
        schedule = WorkerSchedule(HOUSEKEEPING_INTERVAL, IDLE_PASS)
        seen_version, woken = -1, True
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                try:
                    pending = self._pending_worker
                    if pending is not None:
                        self._pending_worker = None
                        config, self.book = pending
                        for stage in (archive, router, sessions, alerts):
                            stage.config = config
                        router.book = self.book
                        router.release_held()
                    version = ledger.data_version()  # changes when another connection commits
                    changed, seen_version = version != seen_version, version
                    if router.book.reload_if_changed():  # one stat: held documents may go now
                        router.release_held()
                        changed = True
                except Exception as exc:
                    trouble.report(exc)
                    self.stop.wait(RETRY_TROUBLE)
                    continue
                if not schedule.pass_needed(now, woken, changed):
                    woken = self.wake.wait(timeout=IDLE_PASS_CHECK)
                    self.wake.clear()
                    continue
                if changed:
                    self.wake_sender.set()  # perhaps a `retry` made something due now
                try:
                    planned = router.step()
                    if schedule.begin_pass(now, router.next_deadline()):
                        schedule.housekept(now, sessions.step())  # may plan a bundle
                        alerts.step()  # may plan an alert
                        archive.step()
                        planned = True
                    built = outbox.prebuild(
                        router.config, ledger, BUILD_AHEAD, time.time(), self.stop.is_set
                    )
                    if planned or built:
                        self.wake_sender.set()  # new messages may be due now
                    trouble.over()
                except Exception as exc:  # one document's trouble is contained by its stage
                    trouble.report(exc)
                    self.stop.wait(RETRY_TROUBLE)
                    continue
                woken = self.wake.wait(timeout=schedule.sleep(time.monotonic()))
                self.wake.clear()
            # Stopping: once the message in flight is settled, file what is finished, so the
            # archive and `status` are up to date while the service is down.
            if self._sender_finished.wait(timeout=60):
                archive.step()
        except (OSError, sqlite3.Error) as exc:
            log.error("could not file the last documents before stopping: %s", exc)
        finally:
            ledger.close()

    def _sender_loop(self) -> None:
        """Only SMTP: every due message over one reused connection, nothing else in its way."""
        while not self._recovered.wait(0.5):  # the worker's archive.recover() comes first
            if self.stop.is_set():
                self._sender_finished.set()
                return
        ledger = Ledger(self.config.state_dir)
        dispatcher = Dispatcher(
            self.config, ledger, self.transport, self.stop, on_progress=self.wake.set
        )
        trouble = Trouble("send")
        try:
            while not self.stop.is_set():
                pending = self._pending_sender
                try:
                    if pending is not None:
                        self._pending_sender = None
                        dispatcher.reload(pending, make_transport(pending, self.stop))
                    wait = dispatcher.step()  # wakes the worker after each message
                    dispatcher.close_if_idle()
                    trouble.over()
                except Exception as exc:
                    trouble.report(exc)
                    self.stop.wait(RETRY_TROUBLE)
                    continue
                # Nothing due: sleep until woken (the worker wakes us for new or retried work).
                self.wake_sender.wait(timeout=max(0.01, IDLE_PASS if wait is None else wait))
                self.wake_sender.clear()
        finally:
            dispatcher.transport.close()
            ledger.close()
            self._sender_finished.set()

    # -- life cycle -----------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        ledger = Ledger(config.state_dir)
        intake = Intake(config, ledger, stopping=self.stop.is_set, on_taken=self.wake.set)
        intake.recover()
        watcher = Watcher(config.watch, intake.offer)
        intake.tracker.closes = watcher.reports_close
        log.info(
            "invoice-mailer starting: config %s; watching %s (%s); sending via %s:%d (%s)",
            config.source,
            config.watch.folder,
            watcher.reason,
            config.smtp.host,
            config.smtp.port,
            config.smtp.security,
        )
        watcher.start()
        watcher.scan()
        loops: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {
            "intake": (self._intake_loop, (intake,)),
            "worker": (self._worker_loop, ()),
        }
        loops["sender"] = (self._sender_loop, ())
        self._threads = [
            threading.Thread(target=guarded(loop, self.stop, self._fail), args=args, name=name)
            for name, (loop, args) in loops.items()
        ]
        for thread in self._threads:
            thread.start()
        self.notifier.ready()
        try:
            self._main_loop(watcher, ledger)
        finally:
            self.notifier.stopping()
            self.stop.set()
            self.wake.set()
            self.wake_sender.set()
            watcher.stop()
            for thread in self._threads:
                thread.join()
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
        while not self.stop.wait(tick):
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
            self._pending_worker = (config, book)
            self._pending_sender = config
            self.wake_sender.set()
            self.wake.set()
            log.info("configuration reloaded from %s", config.source)
        self.notifier.ready()

    def install_signal_handlers(self) -> None:
        def terminate(signum: int, _frame: object) -> None:
            log.info(
                "received %s: finishing the message in flight, then stopping",
                signal.Signals(signum).name,
            )
            self.stop.set()
            self.wake.set()
            self.wake_sender.set()

        def hangup(_signum: int, _frame: object) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        signal.signal(signal.SIGHUP, hangup)


def run_service(config_file: Path, verbose: bool) -> int:
    os.umask(storage.UMASK)  # also under a unit or a shell that says 022
    config = load_config(config_file)
    logsetup.configure(config.log.level, verbose)
    service = Service(config, verbose)
    service.install_signal_handlers()
    return service.run()
