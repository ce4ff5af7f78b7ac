"""The ledger: SQLite in state_dir/ledger.db, the only source of truth about what was sent.

Each thread opens its own Ledger. WAL with synchronous=FULL: a committed row survives a power
cut. Stages talk to each other only through these tables.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoice_mailer.errors import LedgerError, permission_advice
from invoice_mailer.ledger import deliveries, documents, searchschema

SCHEMA_VERSION = 4

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,              -- the file name as the invoicing program wrote it
        source TEXT NOT NULL,            -- where it was found
        location TEXT NOT NULL,          -- where it lies now, relative to state_dir
        moving_to TEXT,                  -- intent: being archived there (finished after a crash)
        kind TEXT NOT NULL,              -- pdf | xml | p7m
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        taken_at REAL NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,                     -- why it is held or failed, for the admin
        wait_until REAL,                 -- state waiting: when to stop waiting for its pair
        info TEXT,                       -- JSON: doc, number, date, year, customer_code, ...
        number TEXT,
        customer_code TEXT,
        customer_name TEXT,
        duplicate_of INTEGER,
        session_id INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE INDEX documents_state ON documents(state);
    CREATE INDEX documents_sha256 ON documents(sha256);
    CREATE INDEX documents_number ON documents(number);
    CREATE INDEX documents_session ON documents(session_id);
    CREATE INDEX documents_in_spool ON documents(state) WHERE location LIKE 'spool/%';
    -- archive.recover() at every start: no scan of a million finished rows for the few moving.
    CREATE INDEX documents_moving ON documents(id) WHERE moving_to IS NOT NULL;

    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        purpose TEXT NOT NULL,           -- customer | copy | bundle | alert
        state TEXT NOT NULL,
        to_addrs TEXT NOT NULL,          -- JSON list
        cc_addrs TEXT NOT NULL DEFAULT '[]',
        bcc_addrs TEXT NOT NULL DEFAULT '[]',
        subject TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL,        -- shared by a delivery to recipients refused for now
        eml TEXT,                        -- the built message, relative to state_dir
        size INTEGER,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        sent_at REAL,
        reply TEXT,
        session_id INTEGER,
        part INTEGER,
        parts INTEGER
    );
    CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
    CREATE INDEX deliveries_sent_at ON deliveries(sent_at);
    CREATE INDEX deliveries_eml ON deliveries(eml);

    CREATE TABLE attachments (
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
        document_id INTEGER NOT NULL REFERENCES documents(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, document_id)
    );
    CREATE INDEX attachments_document ON attachments(document_id);

    -- watch.originals: keep — what was already copied, so it is never taken twice.
    CREATE TABLE originals (
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        document_id INTEGER NOT NULL,
        PRIMARY KEY (path, size, mtime_ns)
    );

    -- all_to sessions: one open at a time.
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        opened_at REAL NOT NULL,
        last_added_at REAL NOT NULL,
        close_requested INTEGER NOT NULL DEFAULT 0,
        closed_at REAL
    );

    -- things the admin should hear about (alerts.to), sent in batches.
    CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        text TEXT NOT NULL,
        sent_at REAL
    );
    CREATE INDEX notices_unsent ON notices(sent_at);

    -- queue-wide conditions (authentication failed, TLS refused): a paused queue.
    CREATE TABLE pauses (
        reason TEXT NOT NULL,
        since REAL NOT NULL,
        check_at REAL NOT NULL
    );
    """,
    # The office's search (office/search.py): full-text indexes kept by triggers, and the
    # register's month by arrival time. Issue 17.
    2: searchschema.MIGRATION,
    # Proof of delivery (issue 16): what the sender's mailbox says about the messages we sent.
    3: """
    -- Where the last pass over each folder of the mailbox stopped (IMAP UIDVALIDITY + UID):
    -- advanced in the same transaction as what that message produced.
    CREATE TABLE imap_cursors (
        folder TEXT PRIMARY KEY,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );

    -- Each receipt, bounce or SdI notice about something we sent, stored byte for byte.
    CREATE TABLE receipts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,              -- accettazione, avvenuta-consegna, …, bounce, sdi
        delivery_id INTEGER REFERENCES deliveries(id),  -- NULL for an SdI notice
        document_id INTEGER REFERENCES documents(id),   -- the XML an SdI notice is about
        recipient TEXT,                  -- the one recipient it is about, when it is one
        message_id TEXT,                 -- ours, as the receipt quotes it
        provider_id TEXT,                -- the provider's identificativo / SdI's id
        provider_at REAL,                -- the provider's time
        reason TEXT,                     -- why it was not delivered, in the sender's words
        path TEXT NOT NULL,              -- the stored message, relative to state_dir
        sha256 TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (folder, uidvalidity, uid)
    );
    CREATE INDEX receipts_sha256 ON receipts(sha256);
    CREATE INDEX receipts_delivery ON receipts(delivery_id);

    -- Per recipient of a sent message: what is known of it (states.Proof).
    CREATE TABLE delivery_recipients (
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
        address TEXT NOT NULL,           -- lower-cased
        proof TEXT NOT NULL,
        proof_at REAL NOT NULL,
        receipt_id INTEGER REFERENCES receipts(id),
        provider_id TEXT,
        reason TEXT,
        expecting TEXT,                  -- the receipt still awaited: accettazione | consegna
        expected_by REAL,                -- when its absence is told to the admin (once)
        PRIMARY KEY (delivery_id, address)
    );
    CREATE INDEX delivery_recipients_expected ON delivery_recipients(expected_by)
        WHERE expected_by IS NOT NULL;
    CREATE INDEX deliveries_message_id ON deliveries(message_id);
    CREATE INDEX documents_name ON documents(name);

    -- A PEC sender that lost the reply to the final dot waits until then for the accettazione.
    ALTER TABLE deliveries ADD COLUMN receipt_wait_until REAL;
    -- The SdI outcome of a FatturaPA XML (RC, NS, MC, NE, DT, AT), from its latest notice.
    ALTER TABLE documents ADD COLUMN sdi TEXT;
    ALTER TABLE documents ADD COLUMN sdi_at REAL;
    ALTER TABLE documents ADD COLUMN sdi_reason TEXT;
    ALTER TABLE documents ADD COLUMN sdi_receipt_id INTEGER;
    """,
    # The office's story and search reach the receipts (issues 16 + 17).
    4: """
    -- A document's story lists the SdI notices about it, without reading every receipt.
    CREATE INDEX receipts_document ON receipts(document_id) WHERE document_id IS NOT NULL;
    -- The search finds a document by a receipt's identificativo or IdentificativoSdI, typed
    -- or pasted whole: one probe (a full-text index would cut it into words every receipt
    -- shares, pec, aruba, it, and nobody types half an identificativo).
    CREATE INDEX receipts_provider ON receipts(provider_id COLLATE NOCASE)
        WHERE provider_id IS NOT NULL;
    """,
}


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
                for statement in _split_sql(_MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: one writer at a time, all or nothing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

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


def _split_sql(script: str) -> list[str]:
    """The statements of a migration; a trigger's body (BEGIN … END) keeps its own `;`."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    statements, pending = [], ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().removesuffix(";"))
            pending = ""
    return statements


def _why(exc: sqlite3.Error, path: Path) -> str:
    """SQLite says "unable to open database file" for a permission problem: say it plainly."""
    for place in (path.parent, path):
        if os.path.lexists(place) and not os.access(place, os.R_OK | os.W_OK):
            return f"{exc} ({place}: permission denied); {permission_advice()}"
    return str(exc)
