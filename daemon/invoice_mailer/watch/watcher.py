"""Noticing files in the export folder: an observer that only names paths, and a supervisor.

In events mode on Linux the observer is folderevents.py's inotify thread; in polling mode (and
elsewhere) watchdog's. watchdog's observer thread dies on a handler exception, a
PollingObserver stops for good when its folder disappears, and inotify drops events on overflow
(NOTES.md). So the handlers do no I/O and cannot raise, `supervise` restarts a dead observer,
and a periodic `scan` catches whatever the events missed. Whether a file is finished is
readiness.py's business.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from collections.abc import Callable

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from invoice_mailer.config.model import WatchConfig
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.watch.folderevents import FolderEvents
from invoice_mailer.watch.mounts import choose_method
from invoice_mailer.watch.readiness import ignored, matches, wanted

logger = logging.getLogger(__name__)

Sink = Callable[[str, str], None]
AnyObserver = BaseObserver | FolderEvents
# Only what readiness needs: no Opened/ClosedNoWrite/Attrib, which our own reads would cause
# and which would fill inotify's queue (it overflows silently).
_EVENT_TYPES = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent]
_JOIN_TIMEOUT = 10.0
_HINTS = {
    errno.ENOENT: "it does not exist",
    errno.ENOSPC: "inotify watch limit reached; raise fs.inotify.max_user_watches (sysctl) "
    "or set watch.method: polling",
    errno.EMFILE: "inotify instance limit reached; raise fs.inotify.max_user_instances (sysctl) "
    "or set watch.method: polling",
}


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into sink(path, event) calls; no I/O, and it never raises."""

    def __init__(self, folder: str, config: WatchConfig, sink: Sink) -> None:
        self._folder, self._config, self._sink = folder, config, sink

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            if not event.is_directory:
                super().dispatch(event)
        except Exception:
            # An exception here would end watchdog's thread: log it and go on.
            logger.exception("could not pass on %s event for %s", event.event_type, event.src_path)

    def on_created(self, event: FileSystemEvent) -> None:
        self._emit(event.src_path, "created")

    def on_modified(self, event: FileSystemEvent) -> None:
        self._emit(event.src_path, "modified")

    def on_closed(self, event: FileSystemEvent) -> None:
        self._emit(event.src_path, "closed")

    def on_moved(self, event: FileSystemEvent) -> None:
        # dest_path is "" for a move out of the folder (inotify "full events").
        if event.dest_path:
            self._emit(event.dest_path, "moved_in")

    def _emit(self, raw: str | bytes, kind: str) -> None:
        path = os.fsdecode(raw)
        if wanted(path, self._folder, self._config):
            self._sink(path, kind)


class Watcher:
    """Names the files that appear in the watch folder, through `sink(path, event)`.

    `sink` runs on watchdog's thread and must be cheap (a queue.put). The service calls
    `start()`, `scan()` once, then `supervise(now)` every few seconds, and `stop()`.
    """

    def __init__(self, config: WatchConfig, sink: Sink, mountinfo_text: str | None = None) -> None:
        self.config = config
        self.folder = os.path.abspath(config.folder)
        self._mountinfo_text = mountinfo_text
        self.method, self.reason = choose_method(config, mountinfo_text)
        self._sink = sink
        self._handler = _Handler(self.folder, config, sink)
        self._lock = threading.Lock()
        self._observer: AnyObserver | None = None
        self._identity: tuple[int, int] | None = None
        self._running = False
        self._down: str | None = None  # why the observer is down, logged once
        self._failure: str | None = None  # why the last restart failed, logged once
        self._last_scan: float | None = None

    @property
    def reports_close(self) -> bool:
        """Does this observer report a writer's close? (ReadinessTracker's `closes`.)

        With method auto it can change when a restart finds the folder on another mount.
        """
        return self.method == "events"

    def start(self) -> None:
        """Start watching; raise InvoiceMailerError with the reason if the folder cannot be."""
        with self._lock:
            self._start_observer()
            self._running = True

    def stop(self) -> None:
        """Stop watching and wait for watchdog's threads to end."""
        with self._lock:
            self._running = False
            self._stop_observer()

    def scan(self) -> int:
        """Name every matching entry in the folder (the safety net); return how many.

        Symlinks, FIFOs and folders named like documents are named too, so that the intake
        can refuse them once; symlinked folders are never followed.
        """
        count, stack = 0, [self.folder]
        patterns, ignore = self.config.patterns, self.config.ignore
        while stack:
            directory = stack.pop()
            top = directory == self.folder  # wanted() without its relpath, for most entries
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if self.config.recursive and _is_real_dir(entry):
                            if not ignored(entry.name, ignore):
                                stack.append(entry.path)
                        elif (
                            matches(entry.name, patterns, ignore)
                            if top
                            else wanted(entry.path, self.folder, self.config)
                        ):
                            self._sink(entry.path, "scan")
                            count += 1
            except OSError as exc:
                logger.warning("cannot scan %s: %s", directory, exc.strerror or exc)
        return count

    def supervise(self, now: float) -> None:
        """Restart a dead observer (then rescan), and rescan every `rescan` seconds (0: never)."""
        with self._lock:
            if not self._running:
                return
            problem = self._problem()
            if problem is not None:
                if not self._restart(problem):
                    return
            elif self._last_scan is None:
                self._last_scan = now  # the service scanned right after start()
                return
            elif self.config.rescan <= 0 or now - self._last_scan < self.config.rescan:
                return
            self._last_scan = now
        self.scan()

    def _problem(self) -> str | None:
        try:
            info = os.stat(self.folder)
        except FileNotFoundError:
            return f"{self.folder} is missing"
        except OSError as exc:
            return f"cannot reach {self.folder}: {exc.strerror or exc}"
        observer = self._observer
        if observer is None:
            return self._down or "not running"
        if (info.st_dev, info.st_ino) != self._identity:
            return f"{self.folder} was replaced by another folder"
        if not observer.is_alive():
            return "its thread ended"
        if isinstance(observer, BaseObserver) and not (
            observer.emitters and all(e.is_alive() for e in observer.emitters)
        ):
            return f"it no longer watches {self.folder}"
        return None

    def _restart(self, problem: str) -> bool:
        if problem != self._down:
            logger.warning("watcher stopped (%s); restarting", problem)
            self._down = problem
        self._stop_observer()
        if self.config.method == "auto":
            # The share may have been mounted over the folder since: choose again.
            self.method, self.reason = choose_method(self.config, self._mountinfo_text)
        try:
            self._start_observer()
        except InvoiceMailerError as exc:
            if str(exc) != self._failure:
                logger.warning("%s; will try again", exc)
                self._failure = str(exc)
            return False
        logger.info("watcher restarted (%s)", self.reason)
        self._down = self._failure = None
        return True

    def _start_observer(self) -> None:
        try:
            info = os.stat(self.folder)
            observer = self._new_observer()
        except OSError as exc:
            raise InvoiceMailerError(_cannot_watch(self.folder, exc)) from None
        try:
            if isinstance(observer, BaseObserver):
                observer.schedule(
                    self._handler,
                    self.folder,
                    recursive=self.config.recursive,
                    event_filter=_EVENT_TYPES,
                )
            observer.start()
        except OSError as exc:
            _halt(observer)
            raise InvoiceMailerError(_cannot_watch(self.folder, exc)) from None
        self._observer, self._identity = observer, (info.st_dev, info.st_ino)

    def _new_observer(self) -> AnyObserver:
        if self.method == "polling":
            return PollingObserver(timeout=self.config.poll_interval)
        if sys.platform.startswith("linux"):
            return FolderEvents(self.folder, self.config, self._sink, self._overflowed)
        return Observer()

    def _overflowed(self) -> None:
        """The kernel dropped events (on the observer's thread): look at the whole folder."""
        if self._running:
            self.scan()

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            _halt(observer)


def _halt(observer: AnyObserver) -> None:
    """Stop an observer in whatever state it is, without raising."""
    try:
        observer.stop()
        if observer.ident is not None:
            observer.join(_JOIN_TIMEOUT)
    except Exception:  # a half-dead observer must not stop the service from going on
        logger.exception("error while stopping the watcher")


def _is_real_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _cannot_watch(folder: str, exc: OSError) -> str:
    """One sentence that says what to do about it."""
    return f"cannot watch {folder}: {_HINTS.get(exc.errno or 0, exc.strerror or str(exc))}"
