"""Intake: turn the watcher's events into documents, once each file is finished.

The watcher only names paths (queue puts on its thread). Here, on the intake's own thread, each
named path is looked at with lstat (symlinks, FIFOs, folders and hard-linked files are refused
and logged once, never opened), fed to the readiness policy, and when it is finished its
content is checked through one safely opened descriptor. A file that fails the check is looked
at again a few times (it may still be growing), then taken anyway to end in failed/ with the
reason. intake/taking.py moves it into the spool and records it, crash-safely; `recover()` finishes
what a crash interrupted. An error on one file (disk full, ledger busy) never stops the others:
that file is tried again a little later, and nothing is forgotten.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.config.model import Config
from invoice_mailer.errors import DocumentError, UnsafeDocument
from invoice_mailer.fatturapa.fieldlimits import SchemaLimit, check_name
from invoice_mailer.intake import content
from invoice_mailer.intake.safeopen import Unsafe, open_document, refusal
from invoice_mailer.intake.spacecheck import LowSpace, LowSpaceReport
from invoice_mailer.intake.taking import Oversize, Taken, Taker, check
from invoice_mailer.intake.troubles import Troubles
from invoice_mailer.ledger import documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.watch.readiness import Observation, ReadinessTracker, RecheckPolicy

log = logging.getLogger(__name__)

RETRY_DELAY = 5.0  # after an error that is not the file's fault (disk full, ledger locked)
BATCH = 100  # files recorded per transaction: one ledger fsync for many files
# After a pause, the first batch holds one file, the next two, then four... up to BATCH: with
# thousands waiting (a start after a downtime), the first document reaches the worker and the
# mail server at once, while the others are still being looked at and taken.
FIRST_BATCH = 1
_RECHECK = "recheck"
_INTERRUPT = ("", "interrupt")  # on the events queue: ends a wait, names no file


class Intake:
    """Turns watcher events into documents; runs on its own thread, never on the watcher's."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        *,
        closes: bool = True,
        clock: Callable[[], float] = time.monotonic,
        stopping: Callable[[], bool] = lambda: False,
        on_taken: Callable[[], None] = lambda: None,
    ):
        """`stopping` is asked between batches (SIGTERM with thousands of files waiting);
        `on_taken` is called after each committed batch so routing can start at once."""
        self.config = config
        self.stopping = stopping
        self.on_taken = on_taken
        self.ledger = ledger
        self.clock = clock
        self.taker = Taker(config, ledger)
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.tracker = ReadinessTracker(config.watch.settle, closes=closes)
        self.rechecks = RecheckPolicy(attempts=3, delay=config.watch.settle)
        # path -> (failed checks of this very content, the content's observation)
        self._failures: dict[str, tuple[int, Observation]] = {}
        self._retry_at: dict[str, float] = {}  # rechecks, and retries after an error
        self._refused: dict[str, tuple[int, str]] = {}  # path -> (inode, why): logged once
        self.troubles = Troubles(self.taker, clock, RETRY_DELAY)
        self._left: set[tuple[str, int, int]] = set()  # too large, recorded, left in the folder
        self._batch = FIRST_BATCH  # the next batch: grows while files keep coming
        self._space = LowSpaceReport(config.state_dir, config.watch.min_free_space, ledger)

    def offer(self, path: str, event: str) -> None:
        """Called on the watcher's thread: only a queue put, no I/O."""
        self.events.put((path, event))

    def interrupt(self) -> None:
        """From another thread (stopping): end the wait of `step()` now."""
        self.events.put(_INTERRUPT)

    def recover(self) -> int:
        """At start: finish interrupted copies and adopt spool files that lost their row."""
        adopted = self.taker.recover()
        self._left = documents.left_in_place(self.ledger.db)
        return adopted

    def pending(self) -> int:
        """Paths waiting to be finished, re-checked or retried."""
        return self.tracker.pending() + len(self._retry_at)

    def step(self, max_wait: float | None = None) -> int:
        """Wait for events, a deadline of its own, `interrupt()` or at most `max_wait` (None:
        no limit); look at what changed, take what is finished."""
        now = self.clock()
        self.troubles.repair_if_due(now)
        deadlines = [
            self.tracker.next_deadline(),
            self.troubles.repair_at,
            *self._retry_at.values(),
        ]
        waits = [d - now for d in deadlines if d is not None]
        if max_wait is not None:
            waits.append(max_wait)
        timeout = max(0.0, min(waits)) if waits else None  # None: until an event comes
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
            if (path, event) != _INTERRUPT:
                self._observe(path, event, now)
        return self._take_finished()

    def _take_finished(self) -> int:
        """Take what is finished, in batches that grow from FIRST_BATCH to BATCH (and start
        small again after a step with nothing to take). A path whose settle time is over is
        looked at once more (stat) just before its batch."""
        now = self.clock()
        due = self.tracker.due(now)  # looked at after their settle time already
        known = set(due)
        due += [path for path, at in self._retry_at.items() if at <= now and path not in known]
        unlooked = collections.deque(self.tracker.needs_stat(now))
        taken, size = 0, self._batch
        while due or unlooked:
            if self.stopping():
                break  # the rest stays in the folder: the next start finds it
            now = self.clock()  # a step may take minutes: each look gets its own time
            while len(due) < size and unlooked:
                path = unlooked.popleft()
                self._observe(path, "scan", now)
                if self.tracker.is_due(path, now):
                    due.append(path)
            batch, due = due[:size], due[size:]
            for path in batch:
                self.tracker.forget(path)
                self._retry_at.pop(path, None)
            if count := self._take_all(batch, now):
                taken += count
                self.on_taken()
            size = min(2 * size, BATCH)
        self._batch = size if taken else FIRST_BATCH
        return taken

    # -- looking --------------------------------------------------------------------------

    def _observe(self, path: str, event: str, now: float) -> None:
        try:
            info = os.lstat(path)
            if why := refusal(info):
                self._refuse(path, info.st_ino, why)
            elif self._left_in_place(path, info):
                pass  # too large, reported once; changed, or the limit raised: looked at again
            elif self._already_taken(Path(path), info):
                pass
            elif not self._waiting_for_recheck(path, info):
                self.tracker.seen(path, now, Observation(info.st_size, info.st_mtime_ns), event)
                return
        except FileNotFoundError:
            self.tracker.seen(path, now, None, event)
            self._refused.pop(path, None)
            self._failures.pop(path, None)
            return
        except (OSError, sqlite3.Error) as exc:
            self.troubles.report(path, exc)
            self._retry_at[path] = now + RETRY_DELAY
        self.tracker.forget(path)

    def _left_in_place(self, path: str, info: os.stat_result) -> bool:
        if info.st_size <= self.config.smtp.max_message_size:
            return False
        key = (storage.safe_name(path), info.st_size, storage.ledger_ns(info.st_mtime_ns))
        return key in self._left

    def _waiting_for_recheck(self, path: str, info: os.stat_result) -> bool:
        """Unchanged since its failed check: the scheduled re-check will look; changed: now."""
        if path not in self._retry_at or path not in self._failures:
            return False
        if self._failures[path][1] == Observation(info.st_size, info.st_mtime_ns):
            return True
        del self._retry_at[path]
        return False

    def _refuse(self, path: str, inode: int, why: str) -> None:
        """Symlinks, FIFOs, devices, folders and hard-linked files: logged once, never read."""
        self._retry_at.pop(path, None)
        if self._refused.get(path) != (inode, why):
            self._refused[path] = (inode, why)
            log.warning("ignoring %s: %s; it is left where it is and never read", path, why)

    def _already_taken(self, path: Path, info: os.stat_result) -> bool:
        """A copy of this very file is in the ledger (`originals: keep`, or a cut-short move)."""
        document_id = self.taker.already_taken(path, info)
        if document_id is None:
            return False
        if self.config.watch.originals == "move":
            log.info("removing %s: already taken as document %d", path, document_id)
            self.taker.remove_originals([(path, info.st_size, info.st_mtime_ns)])
        return True

    # -- taking ---------------------------------------------------------------------------

    def _take_all(self, paths: list[str], now: float) -> int:
        batch: list[Taken] = []
        for path in paths:
            try:
                taken = self._take(Path(path), now)
            except LowSpace:  # waits in the export folder; said once, not per file
                self._retry_at[path] = now + RETRY_DELAY
                continue
            except Exception as exc:  # one file's trouble never stops the others
                self.troubles.report(path, exc)
                self._retry_at[path] = now + RETRY_DELAY
                continue
            if taken is not None:
                batch.append(taken)
        if not batch:
            return 0
        try:
            self.taker.commit(batch)
        except Exception as exc:
            for taken in batch:  # copies are dropped and their sources still there: retry
                self.troubles.report(str(taken.source), exc)
                self._retry_at[str(taken.source)] = now + RETRY_DELAY
            return 0
        self.troubles.over()
        for taken in batch:
            self._failures.pop(str(taken.source), None)
            if taken.left:
                name = storage.safe_name(str(taken.source))
                self._left.add((name, taken.size, storage.ledger_ns(taken.mtime_ns)))
        return len(batch)

    def _take(self, source: Path, now: float) -> Taken | None:
        kind = content.kind_of(source.name)
        if kind is None:  # watch.patterns let in a name that is no PDF, XML or p7m
            self._refuse(str(source), 0, "only PDF, XML and p7m files are sent")
            return None
        try:
            with open_document(source) as (stream, info):
                if self._already_taken(source, info):
                    return None
                oversize = info.st_size > self.config.smtp.max_message_size  # fstat: no name
                copying = not oversize and self._copying(info)
                self._space.check(info.st_size if copying else 0)  # before any byte is read
                reason = self._verdict(str(source), kind, stream, info, now)
                if reason == _RECHECK:
                    return None
                return self.taker.take(source, kind, stream, info, reason, oversize)
        except FileNotFoundError:
            if os.path.lexists(source):
                raise  # the spool is missing, not the file: trouble, retried after repair
            self._failures.pop(str(source), None)
            return None  # gone: nothing to take
        except Unsafe as exc:
            self._refuse(str(source), exc.info.st_ino, exc.why)
            return None

    def _copying(self, info: os.stat_result) -> bool:
        """Whether taking this file copies its bytes into state_dir (keep, or another disk)."""
        if self.config.watch.originals == "keep":
            return True
        return os.stat(self.taker.spool).st_dev != info.st_dev

    def _verdict(
        self, path: str, kind: str, stream, info: os.stat_result, now: float
    ) -> str | None:
        """None when sendable; _RECHECK to look again later; else the reason it failed."""
        try:
            check_name(Path(path).name, self.config.customers.filename_regex)
            check(kind, stream, info.st_size, self.config.smtp.max_message_size)
        except (Oversize, UnsafeDocument, SchemaLimit) as exc:  # final: waiting cannot help
            return str(exc)
        except DocumentError as exc:
            observed = Observation(info.st_size, info.st_mtime_ns)
            failures, before = self._failures.get(path, (0, observed))
            # Only failures of the same content count: a file still growing starts over.
            failures = failures + 1 if before == observed else 1
            if not self.rechecks.should_retry(failures):
                return str(exc)
            self._failures[path] = (failures, observed)
            self._retry_at[path] = self.rechecks.next_check(now, failures)
            log.info("%s is not sendable yet (%s); checking again soon", Path(path).name, exc)
            return _RECHECK
        return None
