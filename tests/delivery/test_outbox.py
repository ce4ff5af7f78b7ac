"""The outbox on a real ledger and real files: building ahead in batches."""

from __future__ import annotations

import email
import time
from email import policy

from invoice_mailer import storage
from invoice_mailer.delivery import outbox
from invoice_mailer.ledger import deliveries, delivery_changes
from invoice_mailer.ledger.states import DeliveryState, Purpose
from invoice_mailer.routing.planning import plan_delivery
from tests.bundles.test_sessions import add_document, make  # noqa: F401 (make: a fixture)


def _customer_delivery(config, ledger, name: str, now: float) -> int:
    document_id = add_document(config, ledger, name, now)
    with ledger.transaction() as db:
        (delivery_id,) = plan_delivery(
            db, config, Purpose.CUSTOMER, ("mario@rossi.example",), [document_id], now
        )
    return delivery_id


def test_a_batch_records_every_message_built_and_leaves_the_unbuildable_one(make):  # noqa: F811
    config, ledger = make(copy_to=[])
    now = time.time()
    ids = [_customer_delivery(config, ledger, f"Fattura_{n}_2026_C042.pdf", now) for n in (1, 2, 3)]
    (config.state_dir / storage.SPOOL / "Fattura_2_2026_C042.pdf").unlink()  # unreadable now

    built = outbox.prebuild(config, ledger, 8, now + 1, lambda: False)

    assert built == 2
    rows = {i: deliveries.by_id(ledger.db, i) for i in ids}
    assert rows[ids[1]]["eml"] is None  # the sender meets it and records why
    for delivery_id in (ids[0], ids[2]):
        row = rows[delivery_id]
        path = config.state_dir / row["eml"]
        assert path.stat().st_size == row["size"]
        message = email.message_from_bytes(path.read_bytes(), policy=policy.SMTP)
        assert message["Message-ID"] == row["message_id"]
        assert outbox.built(config, row) == (path, row["size"])
    assert not list((config.state_dir / storage.OUTGOING).glob(".*.part"))


def test_building_again_after_a_crash_before_the_commit_overwrites_the_unrecorded_file(make):  # noqa: F811
    config, ledger = make(copy_to=[])
    now = time.time()
    delivery_id = _customer_delivery(config, ledger, "Fattura_7_2026_C042.pdf", now)
    stale = config.state_dir / storage.OUTGOING / f"{delivery_id}.eml"
    stale.write_bytes(b"half a message from before the crash")  # written, never recorded

    assert outbox.built(config, deliveries.by_id(ledger.db, delivery_id)) is None
    path, size = outbox.build(config, ledger, deliveries.by_id(ledger.db, delivery_id))

    assert path == stale and path.stat().st_size == size
    assert b"Fattura_7_2026_C042.pdf" in path.read_bytes()


def test_no_more_than_ahead_messages_wait_built_and_half_go_before_the_next_batch(make):  # noqa: F811
    """A reload's new signature reaches the next messages soon: few are built in advance."""
    config, ledger = make(copy_to=[])
    now = time.time()
    ids = [_customer_delivery(config, ledger, f"Fattura_{n}_2026_C042.pdf", now) for n in range(6)]

    assert outbox.prebuild(config, ledger, 4, now + 1, lambda: False) == 4
    assert outbox.prebuild(config, ledger, 4, now + 1, lambda: False) == 0  # 4 still wait
    with ledger.transaction() as db:
        delivery_changes.set_state(db, ids[0], DeliveryState.SENT)
    assert outbox.prebuild(config, ledger, 4, now + 1, lambda: False) == 0  # 3 wait: > half
    with ledger.transaction() as db:
        delivery_changes.set_state(db, ids[1], DeliveryState.SENT)
    assert outbox.prebuild(config, ledger, 4, now + 1, lambda: False) == 2  # back up to 4
    assert [deliveries.by_id(ledger.db, i)["eml"] is not None for i in ids] == [True] * 6
