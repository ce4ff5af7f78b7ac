"""The service's working threads: intake takes files, the worker routes, plans, builds
messages ahead and files the archive, the sender does nothing but SMTP. They share only the
ledger and the events in ThreadEvents; the main thread (service.run) starts, reloads and stops them.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field

from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.archive.archiver import Archive
from invoice_mailer.bundles.sessions import SessionKeeper
from invoice_mailer.config.model import Config
from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.dispatcher import Dispatcher
from invoice_mailer.delivery.smtp.logins import make_login
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.intake.events import Intake
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.routing.router import Router
from invoice_mailer.service.alerts import Alerts
from invoice_mailer.service.schedule import WorkerSchedule
from invoice_mailer.service.trouble import RETRY_TROUBLE, Trouble

log = logging.getLogger(__name__)

# Messages built and waiting for the sender, at most: enough to keep it busy in a burst, few
# enough that a reload's new signature or templates reach the next messages soon (those
# already built keep their text).
BUILD_AHEAD = 48
# Documents routed per pass: in a burst the worker builds the next messages between two
# rounds of routing, instead of routing thousands while the sender waits for a message.
ROUTE_PER_PASS = 64
HOUSEKEEPING_INTERVAL = 0.5  # sessions, alerts and the archive, at most this often
IDLE_PASS = 5.0  # the sender, idle: a look at the queue this often
# The worker, idle: a full pass this often, for what only time changes (an alert held back by
# alerts.interval); timers of their own wake it for the rest (pair_wait, a session's closing).
WORKER_IDLE_PASS = 60.0
# The worker, idle: a look at the address book (one stat) this often. A commit by another
# connection (the sender, a CLI `retry` or `flush`) wakes it at once: the main thread sees the
# ledger written (service.wakeups).
IDLE_PASS_CHECK = 5.0


def make_transport(config: Config, stop: threading.Event | None = None) -> SmtpTransport:
    # smtplib would look up the fully qualified name on every connection (slow when DNS is
    # broken); the plain host name is what mail clients send in EHLO anyway.
    return SmtpTransport(
        config.smtp,
        make_login(config, stop),
        socket.gethostname() or "localhost",
        stop,  # SIGTERM ends a wait on a silent or trickling server within seconds
    )


@dataclass(frozen=True)
class ThreadEvents:
    """How the threads stop and wake each other."""

    stop: threading.Event = field(default_factory=threading.Event)
    # The worker: something was taken, sent, or asked for.
    wake: threading.Event = field(default_factory=threading.Event)
    wake_sender: threading.Event = field(default_factory=threading.Event)  # something may be due
    # The worker's archive.recover() is done: the sender may start.
    recovered: threading.Event = field(default_factory=threading.Event)
    # The sender has settled the message in flight: the worker files what is finished.
    sender_finished: threading.Event = field(default_factory=threading.Event)

    def stop_all(self) -> None:
        """Stop, and wake the worker and the sender so that they see it now."""
        self.stop.set()
        self.wake.set()
        self.wake_sender.set()


def take_files(intake: Intake, stop: threading.Event) -> None:
    """The intake thread's loop: files offered by the watcher into the spool and the ledger."""
    trouble = Trouble("take files")
    while not stop.is_set():
        try:
            intake.step()  # new events, its deadlines or interrupt() end the wait; wakes the
            # worker per batch
            trouble.over()
        except Exception as exc:
            # Disk full, state directory read-only, ledger locked: nothing is lost (the
            # file stays in the export folder); log once and try again shortly.
            trouble.report(exc)
            stop.wait(RETRY_TROUBLE)


class Worker:
    """Routing, sessions, alerts, building messages ahead, and the archive, in turn."""

    def __init__(self, config: Config, book: AddressBookSource, events: ThreadEvents):
        self.config = config
        self.book = book
        self.events = events
        self.pending: tuple[Config, AddressBookSource] | None = None  # a reload, for the loop

    def reload(self, config: Config, book: AddressBookSource) -> None:
        """Hand a reloaded config and address book over; the loop takes them between passes."""
        self.pending = (config, book)

    def loop(self) -> None:
        ledger = Ledger(self.config.state_dir)
        archive = Archive(self.config, ledger)
        router = Router(self.config, ledger, self.book)
        sessions = SessionKeeper(self.config, ledger)
        alerts = Alerts(self.config, ledger)
        archive.recover()
        self.events.recovered.set()
        trouble = Trouble("work on the queue")
        schedule = WorkerSchedule(HOUSEKEEPING_INTERVAL, WORKER_IDLE_PASS)
        seen_version, woken = -1, True
        try:
            while not self.events.stop.is_set():
                now = time.monotonic()
                try:
                    pending = self.pending
                    if pending is not None:
                        self.pending = None
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
                    self.events.stop.wait(RETRY_TROUBLE)
                    continue
                if not schedule.pass_needed(now, woken, changed):
                    woken = self.events.wake.wait(timeout=IDLE_PASS_CHECK)
                    self.events.wake.clear()
                    continue
                if changed:
                    self.events.wake_sender.set()  # perhaps a `retry` made something due now
                try:
                    routed = router.step(ROUTE_PER_PASS)
                    if routed >= ROUTE_PER_PASS:
                        self.events.wake.set()  # more to route: come round again at once
                    planned = bool(routed)
                    if schedule.begin_pass(now, router.next_deadline()):
                        schedule.housekept(now, sessions.step())  # may plan a bundle
                        alerts.step()  # may plan an alert
                        archive.step()
                        planned = True
                    built = outbox.prebuild(
                        router.config, ledger, BUILD_AHEAD, time.time(), self.events.stop.is_set
                    )
                    if planned or built:
                        self.events.wake_sender.set()  # new messages may be due now
                    trouble.over()
                except Exception as exc:  # one document's trouble is contained by its stage
                    trouble.report(exc)
                    self.events.stop.wait(RETRY_TROUBLE)
                    continue
                woken = self.events.wake.wait(timeout=schedule.sleep(time.monotonic()))
                self.events.wake.clear()
            # Stopping: once the message in flight is settled, file what is finished, so the
            # archive and `status` are up to date while the service is down.
            if self.events.sender_finished.wait(timeout=60):
                archive.step()
        except (OSError, sqlite3.Error) as exc:
            log.error("could not file the last documents before stopping: %s", exc)
        finally:
            ledger.close()


class Sender:
    """Only SMTP: every due message over one reused connection, nothing else in its way."""

    def __init__(self, config: Config, transport: SmtpTransport, events: ThreadEvents):
        self.config = config
        self.transport = transport
        self.events = events
        self.pending: Config | None = None  # a reload, for the loop

    def reload(self, config: Config) -> None:
        """Hand a reloaded config over; the loop switches between messages."""
        self.pending = config

    def loop(self) -> None:
        while not self.events.recovered.wait(0.5):  # the worker's archive.recover() comes first
            if self.events.stop.is_set():
                self.events.sender_finished.set()
                return
        ledger = Ledger(self.config.state_dir)
        dispatcher = Dispatcher(
            self.config, ledger, self.transport, self.events.stop, on_progress=self.events.wake.set
        )
        trouble = Trouble("send")
        try:
            while not self.events.stop.is_set():
                pending = self.pending
                try:
                    if pending is not None:
                        self.pending = None
                        dispatcher.reload(pending, make_transport(pending, self.events.stop))
                    wait = dispatcher.step()  # wakes the worker as messages go
                    dispatcher.close_if_idle()
                    trouble.over()
                except Exception as exc:
                    trouble.report(exc)
                    self.events.stop.wait(RETRY_TROUBLE)
                    continue
                if wait is not None and wait <= 0:
                    continue  # planned while the step ran (a burst being routed): go on at once
                # Nothing due: sleep until woken (the worker wakes us for new or retried work).
                self.events.wake_sender.wait(timeout=IDLE_PASS if wait is None else wait)
                self.events.wake_sender.clear()
        finally:
            dispatcher.transport.close()
            ledger.close()
            self.events.sender_finished.set()
