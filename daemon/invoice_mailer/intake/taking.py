"""Taking ownership of finished files: from the export folder into the spool and the ledger.

The order of steps is what makes a crash harmless (nothing lost, nothing taken twice):

- move, same filesystem: rename into spool/ (an entry swapped in under the name since our
  open is put back), hash through our descriptor; for the whole batch, fsync every file's data
  (side by side: a burst's files reach the disk together), then both folders, then commit the
  rows. A crash after the rename leaves a spool file without a row: `recover()` adopts it
  (with the same content check). Data the writer left unwritten at a power cut was never on
  the disk, taken or not; what a row records always is.
- copy (`originals: keep`, or the spool on another filesystem): copy to spool/.NAME.part
  (fsynced), commit the row and an `originals` row (path, size, mtime), then rename the copy
  to NAME, and only then (move) unlink the source. A crash before the commit leaves a .part
  without a row (deleted: the source is still there); after it, a .part with a row (finished
  by `recover()`) and a source the `originals` row marks as already taken.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from invoice_mailer import storage
from invoice_mailer.config.model import Config
from invoice_mailer.errors import DocumentError
from invoice_mailer.intake import content
from invoice_mailer.ledger import document_changes, documents, originals
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState

log = logging.getLogger(__name__)

_PART = ".part"


class Oversize(DocumentError):
    """Larger than any message the server accepts: re-checking cannot help."""


def check(kind: str, stream: BinaryIO, size: int, limit: int) -> None:
    """Raise DocumentError (Oversize when too big to ever send) unless the file is sendable."""
    if size > limit:
        raise Oversize(f"the file is {size:,} bytes, over smtp.max_message_size ({limit:,})")
    try:
        content.check_document(kind, stream, size)
    except DocumentError:
        raise
    except (LookupError, ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
        # A file that trips the checker (an XML declaring an unknown encoding raises
        # LookupError) must end in failed/, not stop the service on every start.
        debug = log.isEnabledFor(logging.DEBUG)  # the traceback with --verbose only
        log.warning("the check of a %s file failed unexpectedly", kind, exc_info=debug)
        raise DocumentError(f"the file cannot be read as {kind.upper()}: {exc}") from None


@dataclass
class Taken:
    """A file moved or copied into the spool, waiting for its row."""

    source: Path
    kind: str
    target: Path  # its place in the spool
    partial: Path | None  # a copy still named .NAME.part until its row is committed
    size: int
    mtime_ns: int
    sha256: str
    reason: str | None  # why it failed its check (it is taken anyway, to end in failed/)
    original: tuple[int, int] | None = None  # a copy's source (size, mtime_ns)
    left: bool = False  # too large to copy: recorded, and left in the export folder


class Taker:
    """Moves or copies files into the spool and records them; finishes what a crash cut."""

    def __init__(self, config: Config, ledger: Ledger):
        self.config = config
        self.ledger = ledger
        self.state_dir = config.state_dir
        self.spool = config.state_dir / storage.SPOOL

    def take(
        self,
        source: Path,
        kind: str,
        stream: BinaryIO,
        info: os.stat_result,
        reason: str | None,
        oversize: bool = False,
    ) -> Taken | None:
        """Own the open file; None when its name turned out to hold another file (left there).

        An `oversize` file is never copied (a sparse 2 GB file would fill state_dir): it moves
        by rename when it can, and is otherwise recorded as failed and left where it is."""
        target = self.spool / storage.spool_name(source.name)
        if self.config.watch.originals == "keep":
            if oversize:
                return _left(source, kind, info, reason)
            return self._copy(source, kind, stream, target, reason)
        try:
            os.rename(source, target)  # its data is fsynced with the batch's, before the rows
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            if oversize:
                return _left(source, kind, info, reason)
            return self._copy(source, kind, stream, target, reason)
        moved = os.lstat(target)
        if (moved.st_dev, moved.st_ino) != (info.st_dev, info.st_ino):
            self._put_back(target, source)
            return None
        with contextlib.suppress(PermissionError):  # another user's file: spool/ is 0700
            os.fchmod(stream.fileno(), storage.PRIVATE_FILE)  # it kept the writer's 0644
        stream.seek(0)
        # What we own now, read through our descriptor; an oversized file is never read.
        sha256 = "" if oversize else storage.hash_stream(stream)
        owned = os.fstat(stream.fileno())
        return Taken(source, kind, target, None, owned.st_size, owned.st_mtime_ns, sha256, reason)

    def _copy(
        self, source: Path, kind: str, stream: BinaryIO, target: Path, reason: str | None
    ) -> Taken:
        partial = target.with_name(f".{target.name}{_PART}")
        stream.seek(0)
        sha256 = storage.copy_hashing(stream, partial)
        owned = os.fstat(stream.fileno())
        size = os.stat(partial).st_size
        original = (owned.st_size, owned.st_mtime_ns)
        return Taken(
            source, kind, target, partial, size, owned.st_mtime_ns, sha256, reason, original
        )

    def _put_back(self, target: Path, source: Path) -> None:
        """Someone swapped the name between our open and our rename: that entry is not ours."""
        if not os.path.lexists(source):
            os.rename(target, source)
            log.warning("%s changed while being taken; left in the folder to look at again", source)
            return
        aside = target.with_name(f".{target.name}.changed")
        os.rename(target, aside)
        log.error("%s was replaced twice while being taken; the other file is in %s", source, aside)

    def commit(self, batch: list[Taken]) -> list[int]:
        """Record a batch in one transaction (one fsync for many files), then finish copies."""
        storage.fsync_files([t.target for t in batch if t.partial is None and not t.left])
        storage.fsync_dir(self.spool)
        for folder in {t.source.parent for t in batch if t.partial is None}:
            storage.fsync_dir(folder)
        try:
            with self.ledger.transaction() as db:
                rows = [(taken, self._insert(db, taken)) for taken in batch]
        except BaseException:
            for taken in batch:
                if taken.partial is not None:
                    with contextlib.suppress(OSError):
                        taken.partial.unlink()
            raise
        copies = [taken for taken in batch if taken.partial is not None]
        for taken in copies:
            os.rename(taken.partial, taken.target)  # type: ignore[arg-type]
        if copies:
            storage.fsync_dir(self.spool)
        if copies and self.config.watch.originals == "move":
            self.remove_originals((t.source, *t.original) for t in copies if t.original)
        for taken, document_id in rows:
            _log_taken(taken, document_id)
        return [document_id for _taken, document_id in rows]

    def _insert(self, db: sqlite3.Connection, taken: Taken) -> int:
        state = DocumentState.FAILED if taken.reason else DocumentState.TAKEN
        # Whether the same content was already sent is routing's question (planning.already_sent):
        # only there is it known whom this file is for.
        source = storage.safe_name(str(taken.source))
        document_id = document_changes.add(
            db,
            name=storage.safe_name(taken.source.name),
            source=source,
            location=source if taken.left else storage.relative(self.state_dir, taken.target),
            kind=taken.kind,
            size=taken.size,
            mtime_ns=storage.ledger_ns(taken.mtime_ns),
            sha256=taken.sha256,
            state=state,
            reason=taken.reason,
            now=time.time(),
        )
        if taken.original is not None:
            size, mtime_ns = taken.original
            originals.record(db, source, size, storage.ledger_ns(mtime_ns), document_id)
        return document_id

    def already_taken(self, path: Path, info: os.stat_result) -> int | None:
        """The document a copy of this very file (path, size, mtime) became, if any."""
        return originals.document_of(
            self.ledger.db,
            storage.safe_name(str(path)),
            info.st_size,
            storage.ledger_ns(info.st_mtime_ns),
        )

    def remove_originals(self, sources: Iterable[tuple[Path, int, int]]) -> None:
        """`originals: move` across filesystems: unlink sources whose copy is committed."""
        done = []
        for path, size, mtime_ns in sources:
            with contextlib.suppress(FileNotFoundError):
                now = os.lstat(path)
                same_time = storage.ledger_ns(now.st_mtime_ns) == storage.ledger_ns(mtime_ns)
                if stat.S_ISREG(now.st_mode) and now.st_size == size and same_time:
                    os.unlink(path)
            done.append((path, size, storage.ledger_ns(mtime_ns)))
        for folder in {path.parent for path, _s, _m in done}:
            storage.fsync_dir(folder)
        with self.ledger.transaction() as db:
            originals.forget(
                db,
                [(storage.safe_name(str(path)), size, mtime_ns) for path, size, mtime_ns in done],
            )

    # -- after a crash --------------------------------------------------------------------

    def recover(self) -> int:
        """Finish or drop interrupted copies and adopt spool files without a row; return adopted."""
        storage.prepare(self.state_dir)
        known = documents.spool_paths(self.ledger.db)
        adopted = []
        for entry in sorted(os.scandir(self.spool), key=lambda e: e.name):
            if entry.name.startswith("."):
                if entry.name.endswith(_PART):
                    self._finish_copy(entry, known)
                continue
            if f"{storage.SPOOL}/{entry.name}" in known:
                continue
            if entry.is_file(follow_symlinks=False):
                adopted.append(self._adopt(Path(entry.path)))
        if adopted:
            self.commit(adopted)
            for taken in adopted:
                log.warning("recovered %s after an interrupted intake", taken.source.name)
        return len(adopted)

    def _finish_copy(self, entry: os.DirEntry[str], known: set[str]) -> None:
        final = self.spool / entry.name[1 : -len(_PART)]
        if storage.relative(self.state_dir, final) in known and not os.path.lexists(final):
            os.rename(entry.path, final)
            storage.fsync_dir(self.spool)
            log.info("finished copying %s after an interrupted intake", final.name)
        else:
            os.unlink(entry.path)  # never committed: the original is still in the export folder
            log.info("dropped an unfinished copy of %s: its original is taken again", final.name)

    def _adopt(self, path: Path) -> Taken:
        name = storage.original_name(path.name)
        kind = content.kind_of(name) or "pdf"
        with open(path, "rb") as stream:
            info = os.fstat(stream.fileno())
            try:
                check(kind, stream, info.st_size, self.config.smtp.max_message_size)
                reason = None
            except DocumentError as exc:
                reason = str(exc)
            stream.seek(0)
            sha256 = storage.hash_stream(stream)
        source = Path(self.config.watch.folder) / name
        return Taken(source, kind, path, None, info.st_size, info.st_mtime_ns, sha256, reason)


def _left(source: Path, kind: str, info: os.stat_result, reason: str | None) -> Taken:
    why = f"{reason}; not copied: it stays where it is, {source}"
    return Taken(source, kind, source, None, info.st_size, info.st_mtime_ns, "", why, left=True)


def _log_taken(taken: Taken, document_id: int) -> None:
    name = taken.source.name
    if taken.reason:
        log.error("%s cannot be sent: %s (document %d)", name, taken.reason, document_id)
    else:
        log.info("took %s as document %d (%d bytes)", name, document_id, taken.size)
