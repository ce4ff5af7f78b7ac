"""Intake: take every finished file from the export folder into the spool and the ledger.

Order of steps (crash-safe): the file is checked and hashed through one open descriptor, then
renamed into spool/ (or copied there, fsynced, when originals are kept or the spool is on
another filesystem), then its row is committed. A crash after the rename leaves a spool file
without a row: `recover()` adopts it at start. A crash before the source of a copy is removed
leaves an `originals` row that says it was already taken. So no file is lost and none is
taken twice.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import stat
import time
from collections.abc import Callable
from pathlib import Path

from . import content, storage
from .config import Config
from .errors import DocumentError
from .ledger import DOC_DONE, DOC_FAILED, DOC_TAKEN, Ledger
from .readiness import Observation, ReadinessTracker, RecheckPolicy

log = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Intake:
    """Turns watcher events into documents; runs on its own thread, never on the watcher's."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        *,
        closes: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.ledger = ledger
        self.clock = clock
        self.state_dir = config.state_dir
        self.spool = config.state_dir / storage.SPOOL
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.tracker = ReadinessTracker(config.watch.settle, closes=closes)
        self.rechecks = RecheckPolicy(attempts=3, delay=config.watch.settle)
        self._failures: dict[str, int] = {}
        self._recheck_at: dict[str, float] = {}
        self._refused: set[tuple[str, int, int]] = set()

    def offer(self, path: str, event: str) -> None:
        """Called on the watcher's thread: only a queue put, no I/O."""
        self.events.put((path, event))

    def step(self, max_wait: float = 1.0) -> int:
        """Wait for events (at most `max_wait`), look at what changed, take what is finished."""
        now = self.clock()
        deadlines = [
            d for d in (self.tracker.next_deadline(), *self._recheck_at.values()) if d is not None
        ]
        timeout = max(0.0, min([max_wait, *[d - now for d in deadlines]]))
        try:
            batch = [self.events.get(timeout=timeout)]
        except queue.Empty:
            batch = []
        while True:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                break
        now = self.clock()
        for path, event in batch:
            self._observe(path, event, now)
        for path in self.tracker.needs_stat(now):
            self._observe(path, "scan", now)
        due = self.tracker.due(now)
        due += [path for path, at in self._recheck_at.items() if at <= now and path not in due]
        taken = 0
        for path in due:
            self.tracker.forget(path)
            self._recheck_at.pop(path, None)
            taken += self._take(Path(path))
        return taken

    def pending(self) -> int:
        return self.tracker.pending() + len(self._recheck_at)

    # -- looking --------------------------------------------------------------------------

    def _observe(self, path: str, event: str, now: float) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self.tracker.seen(path, now, None, event)
            return
        except OSError as exc:
            log.warning("cannot look at %s: %s", path, exc.strerror)
            return
        if self._refuse_if_unsafe(path, info):
            self.tracker.forget(path)
            return
        if self._already_taken(path, info):
            self.tracker.forget(path)
            return
        self.tracker.seen(path, now, Observation(info.st_size, info.st_mtime_ns), event)

    def _refuse_if_unsafe(self, path: str, info: os.stat_result) -> bool:
        """Symlinks, FIFOs, devices, folders and hard-linked files are never opened."""
        if stat.S_ISLNK(info.st_mode):
            why = "it is a symbolic link"
        elif stat.S_ISDIR(info.st_mode):
            why = "it is a folder"
        elif not stat.S_ISREG(info.st_mode):
            why = "it is not a regular file (FIFO, socket or device)"
        elif info.st_nlink != 1:
            why = f"it has {info.st_nlink} hard links (another name could change it)"
        else:
            return False
        key = (path, info.st_ino, info.st_mtime_ns)
        if key not in self._refused:
            self._refused.add(key)
            log.warning("ignoring %s: %s; it is left where it is and never read", path, why)
        return True

    def _already_taken(self, path: str, info: os.stat_result) -> bool:
        row = self.ledger.one(
            "SELECT document_id FROM originals WHERE path = ? AND size = ? AND mtime_ns = ?",
            path,
            info.st_size,
            info.st_mtime_ns,
        )
        if row is None:
            return False
        if self.config.watch.originals == "move":
            # A copy across filesystems committed before the source was removed (crash).
            log.info("removing %s: already taken as document %d", path, row[0])
            os.unlink(path)
        return True

    # -- taking ---------------------------------------------------------------------------

    def _take(self, source: Path) -> int:
        kind = content.kind_of(source.name)
        if kind is None:
            return 0
        try:
            fd = os.open(source, _OPEN_FLAGS)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse_if_unsafe(str(source), os.lstat(source))
            else:
                log.warning("cannot open %s: %s", source, exc.strerror)
            return 0
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if self._refuse_if_unsafe(str(source), info):
                return 0
            reason = self._problem(source, kind, stream, info)
            if reason == "recheck":
                return 0
            stream.seek(0)
            return self._own(source, kind, stream, info, reason)

    def _problem(self, source: Path, kind: str, stream, info: os.stat_result) -> str | None:
        """None when the file is fine; "recheck" to look again later; else the failure reason."""
        limit = self.config.smtp.max_message_size
        if info.st_size > limit:
            return f"the file is {info.st_size:,} bytes, over smtp.max_message_size ({limit:,})"
        try:
            content.check_document(kind, stream, info.st_size)
        except DocumentError as exc:
            failures = self._failures.get(str(source), 0) + 1
            self._failures[str(source)] = failures
            if self.rechecks.should_retry(failures):
                log.info("%s is not sendable yet (%s); checking again soon", source.name, exc)
                self._recheck_at[str(source)] = self.rechecks.next_check(self.clock(), failures)
                return "recheck"
            return str(exc)
        self._failures.pop(str(source), None)
        return None

    def _own(
        self, source: Path, kind: str, stream, info: os.stat_result, reason: str | None
    ) -> int:
        self._failures.pop(str(source), None)
        target = self.spool / storage.spool_name(source.name)
        copied = self.config.watch.originals == "keep"
        if copied:
            sha256 = self._copy_in(stream, target)
        else:
            sha256 = storage.hash_stream(stream)
            try:
                os.rename(source, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                stream.seek(0)
                sha256, copied = self._copy_in(stream, target), True
            else:
                moved = os.lstat(target)
                if (moved.st_ino, moved.st_size) != (info.st_ino, info.st_size):
                    # Swapped between our open and our rename: hash what we really own.
                    with open(target, "rb") as really:
                        sha256 = storage.hash_stream(really)
                storage.fsync_dir(self.spool)
                storage.fsync_dir(source.parent)
        document_id = self._record(source, kind, target, info, sha256, reason, copied)
        if copied and self.config.watch.originals == "move":
            os.unlink(source)
            storage.fsync_dir(source.parent)
        return 1 if document_id else 0

    def _copy_in(self, stream, target: Path) -> str:
        partial = target.with_name(f".{target.name}.part")
        sha256 = storage.copy_hashing(stream, partial)
        os.rename(partial, target)
        storage.fsync_dir(self.spool)
        return sha256

    def _record(
        self,
        source: Path,
        kind: str,
        target: Path,
        info: os.stat_result,
        sha256: str,
        reason: str | None,
        copied: bool,
    ) -> int:
        state, duplicate_of = (DOC_FAILED, None) if reason else (DOC_TAKEN, None)
        now = time.time()
        with self.ledger.transaction() as db:
            if state == DOC_TAKEN and self.config.watch.duplicates == "skip":
                earlier = db.execute(
                    "SELECT id FROM documents WHERE sha256 = ? AND state != ? "
                    "AND duplicate_of IS NULL ORDER BY id LIMIT 1",
                    (sha256, DOC_FAILED),
                ).fetchone()
                if earlier:
                    duplicate_of = earlier[0]
                    state, reason = DOC_DONE, f"same content as document {duplicate_of}; not sent"
            cursor = db.execute(
                "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, "
                "taken_at, state, reason, duplicate_of, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source.name,
                    str(source),
                    storage.relative(self.state_dir, target),
                    kind,
                    info.st_size,
                    info.st_mtime_ns,
                    sha256,
                    now,
                    state,
                    reason,
                    duplicate_of,
                    now,
                ),
            )
            document_id = cursor.lastrowid
            if copied:
                db.execute(
                    "INSERT OR REPLACE INTO originals(path, size, mtime_ns, document_id) "
                    "VALUES (?, ?, ?, ?)",
                    (str(source), info.st_size, info.st_mtime_ns, document_id),
                )
        if duplicate_of:
            log.info(
                "%s has the same content as document %d: not sent again", source.name, duplicate_of
            )
        elif reason:
            log.error("%s cannot be sent: %s", source.name, reason)
        else:
            log.info("took %s as document %d (%d bytes)", source.name, document_id, info.st_size)
        return document_id

    # -- after a crash --------------------------------------------------------------------

    def recover(self) -> int:
        """Adopt spool files that lost their row in a crash; drop half-written copies."""
        storage.prepare(self.state_dir)
        known = {row[0] for row in self.ledger.query("SELECT location FROM documents")}
        adopted = 0
        for entry in os.scandir(self.spool):
            relative = f"{storage.SPOOL}/{entry.name}"
            if entry.name.startswith(".") and entry.name.endswith(".part"):
                os.unlink(entry.path)  # the source still exists: its row was never committed
                continue
            if relative in known or not entry.is_file(follow_symlinks=False):
                continue
            name = storage.original_name(entry.name)
            kind = content.kind_of(name) or "pdf"
            with open(entry.path, "rb") as stream:
                info = os.fstat(stream.fileno())
                sha256 = storage.hash_stream(stream)
            self._record(Path(name), kind, Path(entry.path), info, sha256, None, False)
            log.warning("recovered %s after an interrupted intake", name)
            adopted += 1
        return adopted
