"""The archive: finished documents leave the spool for sent/YYYY/MM/ or failed/ (with a reason
file an admin can act on); a crash halfway is finished by recover(); nothing is deleted.
Real ledger, real files; the delivery outcomes are written into the ledger as the Dispatcher
would (tests/delivery/test_delivery.py covers the same paths through a real SMTP server)."""

from __future__ import annotations

import datetime
import os

import pytest

from invoice_mailer import storage
from invoice_mailer.config.load import load_config
from invoice_mailer.ledger import documents
from tests.support.configs import write_config
from tests.support.delivery_bench import Bench, Clock


@pytest.fixture
def bench(tmp_path):
    made = Bench(load_config(write_config(tmp_path, copy_to=["archivio@example.it"])), Clock())
    yield made
    made.close()


def finish(bench: Bench, state: str, delivery_id: int | None = None, **columns) -> None:
    where = "" if delivery_id is None else f" WHERE id = {int(delivery_id)}"
    assignments = "".join(f", {name} = ?" for name in columns)
    with bench.ledger.transaction() as db:
        db.execute(
            f"UPDATE deliveries SET state = ?{assignments}{where}", (state, *columns.values())
        )


def month_folder(bench: Bench):
    day = datetime.datetime.fromtimestamp(bench.clock())
    return bench.config.state_dir / "sent" / f"{day:%Y}" / f"{day:%m}"


def test_a_sent_document_is_filed_by_month_and_never_overwrites(bench):
    bench.add_invoice(data=b"%PDF-1.4 first\n")
    finish(bench, "sent", sent_at=bench.clock())
    assert bench.archive.step() == 1
    bench.add_invoice(data=b"%PDF-1.4 second\n")  # the same name again (a re-issued invoice)
    finish(bench, "sent", sent_at=bench.clock())
    assert bench.archive.step() == 1
    folder = month_folder(bench)
    assert (folder / "Fattura_123_2026_C042.pdf").read_bytes() == b"%PDF-1.4 first\n"
    assert (folder / "Fattura_123_2026_C042 (2).pdf").read_bytes() == b"%PDF-1.4 second\n"
    assert not list((bench.config.state_dir / "spool").iterdir())
    states = [r["state"] for r in bench.ledger.query("SELECT state FROM documents")]
    assert states == ["done", "done"]


def test_a_document_waits_in_the_spool_while_a_delivery_is_pending(bench):
    bench.add_invoice()
    for state in ("queued", "sending", "deferred"):
        finish(bench, state)
        assert bench.archive.step() == 0
    assert len(list((bench.config.state_dir / "spool").iterdir())) == 1


def test_a_document_in_an_open_session_waits_for_the_session_to_close(bench):
    document = bench.add_invoice()
    finish(bench, "sent", sent_at=bench.clock())
    with bench.ledger.transaction() as db:
        session = db.execute(
            "INSERT INTO sessions(opened_at, last_added_at) VALUES (?, ?)",
            (bench.clock(), bench.clock()),
        ).lastrowid
        db.execute("UPDATE documents SET session_id = ? WHERE id = ?", (session, document))
    assert bench.archive.step() == 0
    with bench.ledger.transaction() as db:
        db.execute("UPDATE sessions SET closed_at = ?", (bench.clock(),))
    assert bench.archive.step() == 1


def test_a_failed_customer_message_goes_to_failed_with_a_reason_an_admin_can_act_on(bench):
    document = bench.add_invoice()
    finish(
        bench, "failed", attempts=1, reply="550 5.1.1 user unknown",
        last_error="550 5.1.1 user unknown (RCPT TO mario@rossi.example)",
    )  # fmt: skip
    bench.archive.step()
    failed = bench.config.state_dir / "failed"
    assert (failed / "Fattura_123_2026_C042.pdf").read_bytes() == b"%PDF-1.4\n%fattura\n"
    text = (failed / "Fattura_123_2026_C042.pdf.reason.txt").read_text()
    when = datetime.datetime.fromtimestamp(bench.clock()).strftime("%Y-%m-%d %H:%M:%S")
    assert text.startswith("Fattura_123_2026_C042.pdf was not sent.\n")
    assert "What failed:   the message to mario@rossi.example, archivio@example.it" in text
    assert "Reason:        550 5.1.1 user unknown (RCPT TO mario@rossi.example)\n" in text
    assert "Server reply:  550 5.1.1 user unknown\n" in text
    assert f"When:          {when}\n" in text and "Attempts:      1\n" in text
    assert text.endswith(f"    invoice-mailer retry {document}\n")
    row = documents.get(bench.ledger.db, document)
    assert row["state"] == "failed" and row["location"] == "failed/Fattura_123_2026_C042.pdf"
    assert bench.notices() == [
        "Fattura_123_2026_C042.pdf was not sent: "
        "550 5.1.1 user unknown (RCPT TO mario@rossi.example)"
    ]


def test_a_file_refused_at_intake_says_so_without_a_server_reply(bench):
    document = bench.add_invoice()
    finish(bench, "failed")
    with bench.ledger.transaction() as db:
        db.execute(
            "UPDATE documents SET state = 'failed', reason = ? WHERE id = ?",
            ("not a PDF: it does not start with %PDF-", document),
        )
    bench.archive.step()
    text = (bench.config.state_dir / "failed" / "Fattura_123_2026_C042.pdf.reason.txt").read_text()
    assert "What failed:   the file itself" in text
    assert "Reason:        not a PDF: it does not start with %PDF-" in text
    assert "Server reply:  none (nothing was sent)" in text and "Attempts:      0" in text


def test_a_failed_copy_alone_does_not_fail_the_document(tmp_path):
    config = load_config(
        write_config(tmp_path, copy_to=["archivio@example.it"], copy_mode="separate")
    )
    bench = Bench(config)
    try:
        bench.add_invoice()
        customer, copy = (row["id"] for row in bench.deliveries())
        finish(bench, "sent", customer, sent_at=bench.clock())
        finish(bench, "failed", copy, last_error="550 no such mailbox")
        bench.archive.step()
        assert (month_folder(bench) / "Fattura_123_2026_C042.pdf").exists()
        assert not list((config.state_dir / "failed").iterdir())
    finally:
        bench.close()


def test_recover_finishes_a_move_that_a_crash_interrupted(bench):
    moved = bench.add_invoice()
    not_moved = bench.add_invoice("Fattura_124_2026_C042.pdf")
    finish(bench, "sent", sent_at=bench.clock())
    # The crash: both intents written, only the first rename done.
    folder = month_folder(bench)
    folder.mkdir(parents=True)
    for document in (moved, not_moved):
        name = documents.get(bench.ledger.db, document)["name"]
        target = f"sent/{folder.parent.name}/{folder.name}/{name}"
        with bench.ledger.transaction() as db:
            db.execute("UPDATE documents SET moving_to = ? WHERE id = ?", (target, document))
    first = documents.get(bench.ledger.db, moved)
    os.rename(
        bench.config.state_dir / first["location"], bench.config.state_dir / first["moving_to"]
    )

    assert bench.archive.recover() == 2
    row = documents.get(bench.ledger.db, moved)
    assert row["state"] == "done" and row["moving_to"] is None
    assert row["location"].endswith("/Fattura_123_2026_C042.pdf")
    assert documents.get(bench.ledger.db, not_moved)["moving_to"] is None
    assert bench.archive.step() == 1  # the one whose rename never happened is filed now
    assert sorted(p.name for p in folder.iterdir()) == [
        "Fattura_123_2026_C042.pdf", "Fattura_124_2026_C042.pdf",
    ]  # fmt: skip


def test_recover_finishes_a_retry_that_a_crash_interrupted(bench):
    """`retry` commits "back to the spool" (moving_to) before it moves the file."""
    document = bench.add_invoice()
    row = documents.get(bench.ledger.db, document)
    failed = bench.config.state_dir / "failed" / row["name"]
    failed.parent.mkdir(exist_ok=True)
    os.rename(bench.config.state_dir / row["location"], failed)
    with bench.ledger.transaction() as db:
        db.execute(
            "UPDATE documents SET state = 'taken', location = ?, moving_to = ? WHERE id = ?",
            (f"failed/{row['name']}", row["location"], document),
        )

    assert bench.archive.recover() == 1
    after = documents.get(bench.ledger.db, document)
    assert after["location"] == row["location"] and after["moving_to"] is None
    assert (bench.config.state_dir / row["location"]).read_bytes().startswith(b"%PDF-")
    assert not failed.exists()


@pytest.mark.parametrize("keep_eml", [True, False])
def test_the_sent_message_is_kept_beside_the_document_only_with_keep_eml(tmp_path, keep_eml):
    config = load_config(write_config(tmp_path, archive={"keep_eml": keep_eml}))
    bench = Bench(config)
    try:
        bench.add_invoice()
        (row,) = bench.ledger.query("SELECT * FROM deliveries")
        outgoing = config.state_dir / storage.OUTGOING / "1.eml"
        outgoing.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
        with bench.ledger.transaction() as db:
            db.execute("UPDATE deliveries SET eml = 'outgoing/1.eml'")
        (row,) = bench.ledger.query("SELECT * FROM deliveries")
        kept = bench.archive.file_message(row, "Fattura_123_2026_C042.pdf")
        assert not outgoing.exists()
        if keep_eml:
            assert kept == f"sent/{month_folder(bench).parent.name}/{month_folder(bench).name}/" \
                "Fattura_123_2026_C042.pdf.eml"  # fmt: skip
            assert (config.state_dir / kept).read_bytes() == b"Subject: x\r\n\r\nbody\r\n"
        else:
            assert kept is None
    finally:
        bench.close()


def test_recover_finishes_closing_a_dismissed_document_that_a_crash_interrupted(bench):
    """`dismiss` (and superseding) commit "closed, moving to closed/" before the file moves."""
    document = bench.add_invoice()
    row = documents.get(bench.ledger.db, document)
    target = f"closed/2026/03/{row['name']}"
    with bench.ledger.transaction() as db:
        db.execute(
            "UPDATE documents SET state = 'dismissed', reason = 'dismissed by hand: x', "
            "moving_to = ? WHERE id = ?",
            (target, document),
        )
    (bench.config.state_dir / "closed" / "2026" / "03").mkdir(parents=True)

    assert bench.archive.recover() == 1
    after = documents.get(bench.ledger.db, document)
    assert (after["state"], after["location"], after["moving_to"]) == ("dismissed", target, None)
    assert (bench.config.state_dir / target).read_bytes().startswith(b"%PDF-")
    assert not (bench.config.state_dir / row["location"]).exists()
    assert bench.archive.step() == 0  # never filed as sent or failed afterwards
