"""The ledger's schema: each migration in order, applied once (PRAGMA user_version counts them).

A new table or column is a new migration at the end, never an edit of an old one: a ledger
written by an earlier version is upgraded in place at the next start.
"""

from __future__ import annotations

import sqlite3

from invoice_mailer.ledger import searchschema

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, str] = {
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


def split_sql(script: str) -> list[str]:
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
