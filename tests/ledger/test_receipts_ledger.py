"""The ledger's proof-of-delivery tables on a real SQLite ledger: the IMAP cursors, the
receipts, each recipient's proof and what is still awaited; and a ledger of the first schema
upgraded in place."""

from __future__ import annotations

import sqlite3

from invoice_mailer.ledger import (
    deliveries,
    delivery_changes,
    delivery_recipients,
    imap_cursors,
    receipts,
)
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.delivery_recipients import Expectation
from invoice_mailer.ledger.receipts import StoredReceipt
from invoice_mailer.ledger.schema import MIGRATIONS, SCHEMA_VERSION, split_sql
from invoice_mailer.ledger.states import DeliveryState, Proof, Purpose

T0 = 1_780_000_000.0


def sent_delivery(db: sqlite3.Connection, message_id: str = "<m@example.it>", **state) -> int:
    delivery_id = delivery_changes.plan(
        db, Purpose.CUSTOMER, ["Mario@Rossi.example"], ["copia@rossi.example"], [], message_id, T0
    )
    delivery_changes.set_state(db, delivery_id, state.get("state", DeliveryState.SENT))
    return delivery_id


def test_a_cursor_never_moves_back_and_a_new_uidvalidity_starts_over(db):
    imap_cursors.advance(db, "INBOX", 7, 40, T0)
    imap_cursors.advance(db, "INBOX", 7, 12, T0)  # a late save of an earlier batch
    imap_cursors.advance(db, "Ricevute", 3, 5, T0)
    assert imap_cursors.every(db) == {"INBOX": (7, 40), "Ricevute": (3, 5)}
    imap_cursors.advance(db, "INBOX", 8, 2, T0)  # the folder was renumbered
    assert imap_cursors.every(db)["INBOX"] == (8, 2)


def test_recipients_are_recorded_once_lower_cased_with_what_is_awaited(db):
    delivery_id = sent_delivery(db)
    awaited = Expectation("accettazione", T0 + 1800)
    delivery_recipients.record_sent(
        db, delivery_id, ["Mario@Rossi.example", "mario@rossi.example", "copia@rossi.example"],
        T0, awaited,
    )  # fmt: skip
    delivery_recipients.record_sent(db, delivery_id, ["mario@rossi.example"], T0 + 5, None)
    rows = delivery_recipients.of_deliveries(db, [delivery_id])[delivery_id]
    assert [(r["address"], r["proof"], r["proof_at"], r["expecting"]) for r in rows] == [
        ("mario@rossi.example", "sent", T0, "accettazione"),
        ("copia@rossi.example", "sent", T0, "accettazione"),
    ]
    assert delivery_recipients.overdue(db, T0 + 1799, 10) == []
    late = delivery_recipients.overdue(db, T0 + 1800, 10)
    assert {r["address"] for r in late} == {"mario@rossi.example", "copia@rossi.example"}
    assert late[0]["message_id"] == "<m@example.it>"
    for row in late:
        delivery_recipients.stop_expecting(db, delivery_id, row["address"])
    assert delivery_recipients.overdue(db, T0 + 10**6, 10) == []


def test_a_proof_with_its_receipt_also_for_a_message_sent_before_recipients_were_kept(db):
    delivery_id = sent_delivery(db)  # no record_sent: an older ledger's message
    stored = StoredReceipt(
        kind="avvenuta-consegna", path="receipts/2026/03/INBOX-7-3-avvenuta-consegna.eml",
        sha256="ab" * 32, folder="INBOX", uidvalidity=7, uid=3, delivery_id=delivery_id,
    )  # fmt: skip
    receipt_id = receipts.add(db, stored, T0)
    delivery_recipients.set_proof(db, delivery_id, "Mario@Rossi.example", Proof.DELIVERED,
                                  T0 + 60, receipt_id, provider_id="opec.1@pec.it")  # fmt: skip
    (row,) = delivery_recipients.of_deliveries(db, [delivery_id])[delivery_id]
    assert (row["address"], row["proof"], row["receipt_path"], row["provider_id"]) == (
        "mario@rossi.example", "delivered", stored.path, "opec.1@pec.it",
    )  # fmt: skip
    assert receipts.with_sha256(db, "ab" * 32)["id"] == receipt_id
    assert receipts.with_sha256(db, "cd" * 32) is None
    assert receipts.paths_by_id(db, [receipt_id]) == {receipt_id: stored.path}
    delivery_recipients.set_proof(db, delivery_id, "copia@rossi.example", Proof.NOT_DELIVERED,
                                  T0 + 70, receipt_id, reason="5.1.1 user unknown")  # fmt: skip
    (gone,) = delivery_recipients.latest_not_delivered(db, 10)
    assert (gone["address"], gone["reason"], gone["message_id"]) == (
        "copia@rossi.example", "5.1.1 user unknown", "<m@example.it>",
    )  # fmt: skip
    assert delivery_recipients.count_by_proof(db) == {"delivered": 1, "not-delivered": 1}


def test_only_messages_that_went_or_may_have_gone_are_found_by_message_id(db):
    found = {
        state: sent_delivery(db, "<same@example.it>", state=state)
        for state in (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.SENDING,
                      DeliveryState.UNCONFIRMED, DeliveryState.FAILED)
    }  # fmt: skip
    rows = deliveries.maybe_sent_with_message_id(db, "<same@example.it>")
    assert [row["id"] for row in rows] == [
        found[DeliveryState.SENT], found[DeliveryState.SENDING], found[DeliveryState.UNCONFIRMED]
    ]  # fmt: skip
    assert delivery_changes.confirm_by_receipt(db, found[DeliveryState.SENDING], T0, "note")
    assert delivery_changes.confirm_by_receipt(db, found[DeliveryState.UNCONFIRMED], T0, "note")
    assert not delivery_changes.confirm_by_receipt(db, found[DeliveryState.FAILED], T0, "note")
    assert deliveries.by_id(db, found[DeliveryState.SENDING])["state"] == DeliveryState.SENT


def test_a_ledger_of_the_first_schema_is_upgraded_in_place(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / "ledger.db")
    for statement in split_sql(MIGRATIONS[1]):
        old.execute(statement)
    old.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, message_id, created_at, "
        "next_attempt_at) VALUES ('customer', 'sent', '[\"a@b.it\"]', '<old@x.it>', 1, 1)"
    )
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    with Ledger(state) as ledger:
        assert ledger.scalar("PRAGMA user_version") == SCHEMA_VERSION == 4
        (row,) = deliveries.maybe_sent_with_message_id(ledger.db, "<old@x.it>")
        assert row["receipt_wait_until"] is None
        assert imap_cursors.every(ledger.db) == {}
