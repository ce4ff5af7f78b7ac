"""The export folder in events mode on Linux: inotify read on one thread, each event about a
document passed on as sink(path, kind), kind one of created, modified, closed, moved_in.

Not watchdog's inotify observer: it pairs every IN_MOVED_TO with an IN_MOVED_FROM by scanning
its whole queue of pending events (watchdog's DelayedQueue), so N files renamed into the folder
at once cost it N²/2 comparisons (2,000 files: more than half of its threads' time), and three
threads hand each event on. The intake needs no pairing: a file renamed in, from this folder or
any other, is one IN_MOVED_TO ("moved_in"), and the intake's own moves out of the folder
(IN_MOVED_FROM) are not even asked for. Nothing here blocks but poll(): idle, it never wakes.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections.abc import Callable

from invoice_mailer.config.model import WatchConfig
from invoice_mailer.watch import inotify
from invoice_mailer.watch.readiness import ignored, matches, wanted

logger = logging.getLogger("invoice_mailer.watch.watcher")

Sink = Callable[[str, str], None]

KINDS = {
    inotify.IN_MOVED_TO: "moved_in",
    inotify.IN_CLOSE_WRITE: "closed",
    inotify.IN_MODIFY: "modified",
    inotify.IN_CREATE: "created",
}
# Attribute changes (IN_ATTRIB) and reads are left out: they say nothing about a writer, and
# every event costs a stat in the intake.
MASK = (
    inotify.IN_CREATE
    | inotify.IN_MODIFY
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_MOVED_TO
    | inotify.IN_DELETE_SELF
    | inotify.IN_ONLYDIR
    | inotify.IN_DONT_FOLLOW
)
_KIND_BITS = sum(KINDS)
_NEW_FOLDER = inotify.IN_CREATE | inotify.IN_MOVED_TO


class FolderEvents(threading.Thread):
    """Watches `folder` (and its subfolders when `config.recursive`) from `start()` to `stop()`.

    The constructor adds the watches, so an unwatchable folder raises OSError there. The thread
    ends by itself when the folder is deleted or unmounted; the Watcher's supervision notices
    (`is_alive()`) and starts a new one. `on_overflow` runs when the kernel dropped events."""

    def __init__(
        self, folder: str, config: WatchConfig, sink: Sink, on_overflow: Callable[[], None]
    ) -> None:
        super().__init__(name="watch", daemon=True)
        self.folder, self.config = folder, config
        self._sink, self._on_overflow = sink, on_overflow
        self._lock = threading.Lock()
        self._closed = False
        self._told_limit = False
        self._inotify = inotify.Inotify()
        self._dirs: dict[int, str] = {}  # watch descriptor -> the folder it watches
        try:
            self._root = self._inotify.add(folder, MASK)
            self._dirs[self._root] = folder
            if config.recursive:
                self._watch_below(folder, report=False)
            self._wake_r, self._wake_w = os.pipe()
        except BaseException:
            self._inotify.close()
            raise

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._inotify.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                ready = [fd for fd, _mask in poller.poll()]
                if self._wake_r in ready or not self._handle(self._inotify.read()):
                    return
        except Exception:  # the supervisor starts a new watch; the rescan finds what was missed
            logger.exception("error while reading the folder's events")

    def stop(self) -> None:
        """End the thread and release its descriptors; safe to call again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.write(self._wake_w, b"!")
        if self.ident is not None and self is not threading.current_thread():
            self.join()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._inotify.close()

    # -- on the thread --------------------------------------------------------------------

    def _handle(self, events: list[inotify.Event]) -> bool:
        """Pass the events on; False once the folder itself is gone (deleted, unmounted)."""
        overflow = False
        for event in events:
            if event.mask & inotify.IN_Q_OVERFLOW:
                overflow = True
                continue
            directory = self._dirs.get(event.wd)
            if directory is None:
                continue
            if event.mask & inotify.IN_IGNORED:  # its folder was deleted or unmounted
                del self._dirs[event.wd]
                if event.wd == self._root:
                    return False
                continue
            if not event.name:
                continue  # about the folder itself: IN_IGNORED follows if it is gone
            name = os.fsdecode(event.name)
            path = os.path.join(directory, name)
            if event.mask & inotify.IN_ISDIR:
                new = self.config.recursive and event.mask & _NEW_FOLDER
                if new and not ignored(name, self.config.ignore) and self._add(path):
                    self._watch_below(path, report=True)
                continue
            kind = KINDS.get(event.mask & _KIND_BITS)
            if kind is not None and self._wanted(directory, name, path):
                self._emit(path, kind)
        if overflow:
            logger.warning("the kernel dropped events for %s (a burst); scanning it", self.folder)
            self._on_overflow()
        return True

    def _wanted(self, directory: str, name: str, path: str) -> bool:
        if directory == self.folder:  # wanted() without its relpath: most events are here
            return matches(name, self.config.patterns, self.config.ignore)
        return wanted(path, self.folder, self.config)

    def _emit(self, path: str, kind: str) -> None:
        try:
            self._sink(path, kind)
        except Exception:  # the sink is a queue put; never let it end the watch
            logger.exception("could not pass on %s event for %s", kind, path)

    def _watch_below(self, top: str, report: bool) -> None:
        """Watch every real subfolder below `top`; with `report`, name the documents already
        in them and in `top`: a new folder's files came before its watch did."""
        stack, ignore = [top], self.config.ignore
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if _is_real_dir(entry):
                            if not ignored(entry.name, ignore) and self._add(entry.path):
                                stack.append(entry.path)
                        elif report and wanted(entry.path, self.folder, self.config):
                            self._emit(entry.path, "scan")
            except OSError:
                continue  # gone again, or unreadable: the periodic rescan has the last word

    def _add(self, directory: str) -> bool:
        try:
            self._dirs[self._inotify.add(directory, MASK)] = directory
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and not self._told_limit:
                self._told_limit = True
                logger.warning("cannot watch %s: %s; the rescan covers it", directory, exc)
            return False
        return True


def _is_real_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
