"""The ledger: SQLite in state_dir/ledger.db, the only source of truth about what was sent.

Each thread opens its own Ledger. WAL with synchronous=FULL: a committed row survives a power
cut. Stages talk to each other only through these tables.

The service's threads take turns writing through an in-process lock before SQLite's own: SQLite
makes a second writer sleep and poll (1, 2, 5, 10 … ms), so in a month-end burst the sender
spent more time waiting for the worker's and the intake's commits to end than committing. A lock
hands over the moment the commit ends. Other processes (the CLI) still meet SQLite's busy wait.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoice_mailer.errors import LedgerError, permission_advice
from invoice_mailer.ledger import deliveries, documents
from invoice_mailer.ledger.schema import MIGRATIONS, SCHEMA_VERSION, split_sql


class _Writers:
    """The writer lock of one ledger file, shared by every connection of this process, and
    how many threads wait for it (a batch makes way for them). Re-entrant, so that a thread
    that (wrongly) nests two connections' transactions meets SQLite's timeout, not a hang."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._counting = threading.Lock()
        self.waiting = 0

    def acquire(self) -> None:
        if self.lock.acquire(blocking=False):
            return
        with self._counting:
            self.waiting += 1
        try:
            self.lock.acquire()
        finally:
            with self._counting:
                self.waiting -= 1


_WRITERS: dict[str, _Writers] = {}
_WRITERS_GUARD = threading.Lock()


def _writers_of(path: Path) -> _Writers:
    key = os.path.realpath(path)
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, _Writers())


class Ledger:
    """One connection to the ledger; not shared between threads."""

    def __init__(self, state_dir: Path, readonly: bool = False, immutable: bool = False):
        """`immutable` (read-only too): a ledger nobody writes now, read without locks or
        -wal/-shm files; for a reader that may create no file beside it (the office's page)."""
        self.state_dir = state_dir
        self.path = state_dir / "ledger.db"
        readonly = readonly or immutable
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro" + ("&immutable=1" if immutable else "")
                self.db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False
                )
            else:
                state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                # Handed from the thread that opens it to the one that uses it, never shared.
                self.db = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30, check_same_thread=False
                )
            self.db.row_factory = sqlite3.Row
            self._writers = _writers_of(self.path)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._migrate()
            else:
                self._check_version()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"cannot open the ledger {self.path}: {_why(exc, self.path)}"
            ) from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _check_version(self) -> None:
        if self._version() > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path} was written by a newer invoice-mailer "
                f"(schema {self._version()}, this one knows {SCHEMA_VERSION}); upgrade it"
            )

    def _migrate(self) -> None:
        self._check_version()
        with self.transaction():
            for version in range(self._version() + 1, SCHEMA_VERSION + 1):
                for statement in split_sql(MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: one writer at a time, all or nothing.

        Inside a batch() it is a savepoint: all or nothing still, durable when the batch ends."""
        self._writers.acquire()
        try:
            if self.db.in_transaction:
                yield from self._savepoint()
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        finally:
            self._writers.lock.release()

    @contextmanager
    def batch(self) -> Iterator[sqlite3.Connection]:
        """Several transactions made durable by one commit (one fsync instead of one each).

        Only for work that acts on nothing outside the ledger until the batch ends: a file
        moved or a message sent inside it could outlive a crash that loses its record."""
        with self.transaction() as db:
            yield db

    def others_waiting(self) -> bool:
        """Whether another thread waits to write: a batch ends early to let it (the sender,
        between two messages, must not wait for a batch of routing)."""
        return self._writers.waiting > 0

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("SAVEPOINT step")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK TO step")
            self.db.execute("RELEASE step")
            raise
        self.db.execute("RELEASE step")

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, params).fetchone()

    def scalar(self, sql: str, *params: Any) -> Any:
        """The value of an aggregate (COUNT, MIN, MAX without GROUP BY), which SQL always
        answers with exactly one row: no None to check, unlike one()."""
        return self.db.execute(sql, params).fetchone()[0]

    def data_version(self) -> int:
        """Changes when another connection commits: how the service notices `retry`/`flush`."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def counts(self) -> dict[str, dict[str, int]]:
        """Documents and deliveries per state (for status and the systemd STATUS line)."""
        return {
            "documents": documents.count_by_state(self.db),
            "deliveries": deliveries.count_by_state(self.db),
        }


def _why(exc: sqlite3.Error, path: Path) -> str:
    """SQLite says "unable to open database file" for a permission problem: say it plainly."""
    for place in (path.parent, path):
        if os.path.lexists(place) and not os.access(place, os.R_OK | os.W_OK):
            return f"{exc} ({place}: permission denied); {permission_advice()}"
    return str(exc)
