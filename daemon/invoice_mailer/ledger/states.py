"""The ledger's vocabulary, defined once: document states, delivery states, delivery purposes.

Each is a StrEnum, so a member is the very text stored in the ledger and can be passed to
SQLite as a parameter or compared with a row's column as it is.

Documents (table `documents`, one row per file taken from the export folder):

    taken ──► waiting ──► routed ──► done        (every delivery sent; file in archive/)
      │   (a PDF waits    ▲     └───► failed      (the customer message failed; file in failed/)
      │    for its XML)   │
      ├───────────────────┘
      ├──► done          (the same file was already sent: recorded, not sent again)
      └──► held ──► taken   (the address book changed: routed again)
    held | failed ──► superseded   (a later file for the same document was sent; closed/)
    held | failed ──► dismissed    (`dismiss ID --note`; closed/)
    held | failed ──► taken        (`retry`: back to the spool and to routing)

Deliveries (table `deliveries`, one row per message; `attachments` ties it to its documents):

    queued ──► sending ──► sent
                  │  └───► deferred ──► sending …  (a temporary refusal; next_attempt_at)
                  ├──────► failed                  (a permanent refusal, or retries ran out)
                  └──────► unconfirmed             (the reply to the final "." was lost twice)
    failed | unconfirmed ──► retried   (history: `retry` planned a new row in its place)

Recipients (table `delivery_recipients`, one row per address of a sent message): its Proof,
from the receipts, bounces and SdI notices read in the sender's mailbox (`receipts`):

    sent ──► accepted ──► delivered        (PEC: accettazione, then avvenuta consegna)
      │          └──────► not-delivered    (mancata consegna, a bounce)
      └─────────────────► not-delivered    (non accettazione, a bounce)

The other tables: `sessions` (the accountant's working sessions, Tutto a), `notices` (what the
admin should hear about), `pauses` (queue-wide conditions), `originals` (what was already taken
from the export folder), `imap_cursors` (how far the mailbox was read). The schema is in
`schema.py` (its migrations, in order), the connection in `database.py`; the queries in the
module named after each table family: documents (+ document_changes, originals), deliveries
(+ delivery_changes, attachments), delivery_recipients, receipts, imap_cursors, sessions,
notices, pauses, and search (the office's full-text indexes, searchschema.py).
"""

from __future__ import annotations

from enum import StrEnum


class DocumentState(StrEnum):
    TAKEN = "taken"
    WAITING = "waiting"  # a PDF waiting for the XML it is sent with
    ROUTED = "routed"
    HELD = "held"  # until the address book knows the customer
    DONE = "done"
    FAILED = "failed"
    # Closed without being sent: history, not work; the files lie under closed/.
    SUPERSEDED = "superseded"
    DISMISSED = "dismissed"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DEFERRED = "deferred"
    # The reply after the final "." was lost twice: the server may have it. Never resent by
    # itself (one resend is the RFC 1047 allowance); a person checks the Sent folder.
    UNCONFIRMED = "unconfirmed"
    SENT = "sent"
    FAILED = "failed"
    RETRIED = "retried"  # a failed delivery replaced by a new attempt; kept as history


class Purpose(StrEnum):
    CUSTOMER = "customer"
    COPY = "copy"  # Copia a
    BUNDLE = "bundle"  # Tutto a: the accountant's bundle
    ALERT = "alert"  # to the admin (alerts.to)


class Proof(StrEnum):
    """What the office can show about one recipient of a sent message."""

    SENT = "sent"  # the server took it; no receipt expected, or none yet
    ACCEPTED = "accepted"  # the PEC provider took it (final for an ordinary address)
    DELIVERED = "delivered"  # in the recipient's mailbox: the avvenuta consegna
    NOT_DELIVERED = "not-delivered"  # mancata consegna, non accettazione, or a bounce

    @property
    def rank(self) -> int:
        """Later knowledge outranks earlier; delivered and not-delivered are final."""
        return {"sent": 0, "accepted": 1, "delivered": 2, "not-delivered": 2}[self.value]


# Still the service's work: the worker sends these, by itself, when they are due.
PENDING_DELIVERY = (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.DEFERRED)
# What `dismiss` may close by hand.
DISMISSABLE = (DocumentState.FAILED, DocumentState.HELD)
