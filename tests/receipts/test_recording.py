"""The ProofKeeper on a real ledger and real files, without IMAP: receipts in any order, a
replay (the same message read again), the lost-reply case, the cursor kept in step, and the
late receipts told to the admin once (receipts/deadlines.py)."""

from __future__ import annotations

import pytest

from invoice_mailer.config.load import load_config
from invoice_mailer.ledger import delivery_changes, delivery_recipients, imap_cursors, notices
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, Purpose
from invoice_mailer.receipts.deadlines import tell_overdue
from invoice_mailer.receipts.mailbox import Fetched
from invoice_mailer.receipts.recording import CURSOR_BATCH, ProofKeeper
from tests.support.configs import write_config
from tests.support.receiptmail import SENDER, pec_receipt

T0 = 1_780_000_000.0
PEC = "cliente@pec.bianchi.it"
MID = "<fattura-201@pec.studiorossi.it>"


@pytest.fixture
def keeper(tmp_path):
    imap = {"host": "imap.example.it", "password": "x"}
    config = load_config(
        write_config(tmp_path, sender={"address": SENDER}, receipts={"imap": imap, "pec": True})
    )
    with Ledger(config.state_dir) as ledger:
        with ledger.transaction() as db:
            delivery_id = delivery_changes.plan(db, Purpose.CUSTOMER, [PEC], [], [], MID, T0)
            delivery_changes.set_state(db, delivery_id, DeliveryState.SENT)
        yield ProofKeeper(config, ledger, clock=lambda: T0 + 10)


def fetched(uid: int, data: bytes, uidvalidity: int = 7) -> Fetched:
    return Fetched("INBOX", uidvalidity, uid, len(data), data)


def proof(keeper: ProofKeeper) -> str:
    return delivery_recipients.get(keeper.ledger.db, 1, PEC)["proof"]


def test_a_consegna_read_before_its_accettazione_stays_delivered(keeper):
    keeper.look_at(fetched(1, pec_receipt("avvenuta-consegna", MID, recipient=PEC)))
    keeper.look_at(fetched(2, pec_receipt("accettazione", MID, addressees={PEC: True})))
    assert proof(keeper) == "delivered"
    assert imap_cursors.every(keeper.ledger.db) == {"INBOX": (7, 2)}
    assert keeper.counts == {"receipts": 2, "ignored": 0}


def test_the_same_message_read_again_counts_once(keeper, tmp_path):
    data = pec_receipt("errore-consegna", MID, recipient=PEC, error="no-dest")
    keeper.look_at(fetched(1, data))
    keeper.look_at(fetched(1, data, uidvalidity=8))  # the folder renumbered: read again
    stored = list((tmp_path / "state" / "receipts").rglob("*.eml"))
    assert [path.read_bytes() for path in stored] == [data]
    assert len(notices.unsent(keeper.ledger.db)) == 1
    assert keeper.counts == {"receipts": 1, "ignored": 1}


def test_unrelated_mail_moves_the_cursor_in_batches(keeper):
    for uid in range(1, CURSOR_BATCH + 6):
        keeper.look_at(fetched(uid, b"Subject: offerta\r\n\r\ntesto\r\n"))
    assert imap_cursors.every(keeper.ledger.db) == {"INBOX": (7, CURSOR_BATCH)}
    keeper.flush()
    assert imap_cursors.every(keeper.ledger.db) == {"INBOX": (7, CURSOR_BATCH + 5)}


def test_an_accettazione_settles_a_message_whose_reply_was_lost(keeper):
    with keeper.ledger.transaction() as db:
        delivery_changes.set_state(db, 1, DeliveryState.SENDING)
    keeper.look_at(fetched(1, pec_receipt("accettazione", MID, addressees={PEC: True})))
    row = keeper.ledger.one("SELECT state, sent_at, last_error FROM deliveries WHERE id = 1")
    assert row["state"] == "sent" and row["sent_at"] == T0 + 10
    assert "accettazione shows it was taken" in row["last_error"]
    assert proof(keeper) == "accepted"


def test_late_receipts_are_told_once(keeper):
    config, ledger = keeper.config, keeper.ledger
    with ledger.transaction() as db:
        awaited = delivery_recipients.Expectation("accettazione", T0 + 1800)
        delivery_recipients.record_sent(db, 1, [PEC], T0, awaited)
    assert tell_overdue(config, ledger, T0 + 1799) == 0
    assert tell_overdue(config, ledger, T0 + 1800) == 1
    assert tell_overdue(config, ledger, T0 + 10**6) == 0
    (told,) = notices.unsent(ledger.db)
    assert told["text"].startswith(f"no accettazione for message 1 (Message-ID {MID}) 30 min")
    # The accettazione came late after all: now the consegna is awaited, deliver_within (24 h)
    # after the provider's own time.
    keeper.look_at(fetched(1, pec_receipt("accettazione", MID, addressees={PEC: True})))
    assert tell_overdue(config, ledger, T0 + 10**9) == 1
    assert (
        "no avvenuta consegna for message 1 to cliente@pec.bianchi.it 24 h after"
        in (notices.unsent(ledger.db)[-1]["text"])
    )


def test_an_alert_that_did_not_arrive_makes_no_alert(keeper):
    alert_id = "<alert-1@pec.studiorossi.it>"
    with keeper.ledger.transaction() as db:
        delivery_changes.plan_alert(db, ["admin@pec.example"], "invoice-mailer", "…", alert_id, T0)
        delivery_changes.set_state(db, 2, DeliveryState.SENT)
    refused = pec_receipt("errore-consegna", alert_id, recipient="admin@pec.example")
    keeper.look_at(fetched(1, refused))
    assert delivery_recipients.get(keeper.ledger.db, 2, "admin@pec.example")["proof"] == (
        "not-delivered"
    )
    assert notices.unsent(keeper.ledger.db) == []
