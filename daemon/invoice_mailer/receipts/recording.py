"""Looking at each new message of the mailbox once: a receipt about one of our messages is
stored byte for byte, then recorded with what it changes and the folder's cursor in one
transaction; anything else only moves the cursor (in batches: reading it again costs nothing).

So a kill -9 anywhere loses nothing (the cursor has not passed an unrecorded receipt) and
counts nothing twice (a receipt with the same bytes is recorded once; its file is rewritten
under the same name).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from invoice_mailer.config.model import Config
from invoice_mailer.ledger import (
    delivery_changes,
    delivery_recipients,
    document_changes,
    imap_cursors,
    notices,
    receipts,
)
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.receipts import StoredReceipt
from invoice_mailer.receipts import store
from invoice_mailer.receipts.mailbox import Cursor, Fetched
from invoice_mailer.receipts.matching import NotOurs, Outcome, match
from invoice_mailer.receipts.recognise import Unrelated, recognise

log = logging.getLogger(__name__)

CURSOR_BATCH = 1000  # unrelated messages between two saves of the cursor


class ProofKeeper:
    """Turns fetched messages into stored receipts and proofs; one per receipts thread."""

    def __init__(self, config: Config, ledger: Ledger, clock: Callable[[], float] = time.time):
        self.config = config
        self.ledger = ledger
        self.clock = clock
        self._unsaved: Cursor | None = None  # passed unrelated messages not yet saved
        self._unsaved_count = 0
        self.counts = {"receipts": 0, "ignored": 0}

    def look_at(self, fetched: Fetched) -> None:
        """One new message, looked at once."""
        where = f"{fetched.folder} UID {fetched.uid}"
        if fetched.data is None:
            log.warning(
                "%s: %d bytes, over receipts.imap.max_message_size: not read",
                where, fetched.size,
            )  # fmt: skip
            return self._pass(fetched)
        found = recognise(fetched.data, self.config.receipts.imap.max_message_size)
        if isinstance(found, Unrelated):
            log.debug("%s: ignored, %s", where, found.reason)
            return self._pass(fetched)
        outcome = match(self.ledger.db, self.config, found, self.clock())
        if isinstance(outcome, NotOurs):
            log.info("%s: ignored %s", where, outcome.reason)
            return self._pass(fetched)
        digest = store.sha256(fetched.data)
        if receipts.with_sha256(self.ledger.db, digest) is not None:
            log.info("%s: the same message was recorded already (%s)", where, outcome.summary)
            return self._pass(fetched)
        path = store.receipt_path(
            self.config.state_dir, fetched.data, fetched.folder, fetched.uidvalidity,
            fetched.uid, outcome.kind,
        )  # fmt: skip
        store.store(path, fetched.data)
        relative = str(path.relative_to(self.config.state_dir))
        self._record(fetched, outcome, relative, digest)
        self.counts["receipts"] += 1
        log.info("%s: %s; stored in %s", where, outcome.summary, path)

    def flush(self) -> None:
        """Save the cursor past the unrelated messages looked at so far."""
        cursor, self._unsaved, self._unsaved_count = self._unsaved, None, 0
        if cursor is not None:
            with self.ledger.transaction() as db:
                imap_cursors.advance(
                    db, cursor.folder, cursor.uidvalidity, cursor.last_uid, self.clock()
                )

    def _pass(self, fetched: Fetched) -> None:
        self.counts["ignored"] += 1
        self._unsaved = fetched.cursor
        self._unsaved_count += 1
        if self._unsaved_count >= CURSOR_BATCH:
            self.flush()

    def _record(self, fetched: Fetched, outcome: Outcome, path: str, digest: str) -> None:
        now = self.clock()
        stored = StoredReceipt(
            kind=outcome.kind,
            path=path,
            sha256=digest,
            folder=fetched.folder,
            uidvalidity=fetched.uidvalidity,
            uid=fetched.uid,
            delivery_id=outcome.delivery_id,
            document_id=outcome.document_id,
            recipient=outcome.recipient,
            message_id=outcome.message_id,
            provider_id=outcome.provider_id,
            provider_at=outcome.provider_at,
            reason=outcome.reason,
        )
        confirmed = []
        with self.ledger.transaction() as db:
            receipt_id = receipts.add(db, stored, now)
            for proof in outcome.proofs:
                delivery_recipients.set_proof(
                    db, proof.delivery_id, proof.address, proof.proof, proof.when, receipt_id,
                    provider_id=proof.provider_id, reason=proof.reason, expecting=proof.expecting,
                )  # fmt: skip
            note = f"the reply was lost; the provider's {outcome.kind} shows it was taken"
            for delivery_id in outcome.confirmed:
                if delivery_changes.confirm_by_receipt(db, delivery_id, now, note):
                    confirmed.append(delivery_id)
            for sdi in outcome.sdi:
                document_changes.record_sdi(
                    db, sdi.document_id, sdi.kind, sdi.when, sdi.reason, receipt_id
                )
            for text in outcome.notices:
                notices.add(db, now, text)
            imap_cursors.advance(db, fetched.folder, fetched.uidvalidity, fetched.uid, now)
        self._unsaved, self._unsaved_count = None, 0
        if confirmed:
            log.warning(
                "%s: the server's reply had been lost; the %s shows the message was taken, so "
                "it is not sent again",
                outcome.summary, outcome.kind,
            )  # fmt: skip
        for text in outcome.notices:
            log.warning("%s", text)
