"""Sessions and bundles against the real ledger, with an injected clock: no waiting."""

from __future__ import annotations

import datetime
import email
import json
from email import policy

import pytest

from invoice_mailer import storage
from invoice_mailer.bundles import plan as bundles
from invoice_mailer.bundles import sessions
from invoice_mailer.config.load import load_config
from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.messages import encoded_length
from invoice_mailer.demo.samples import make_pdf
from invoice_mailer.ledger import documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.routing.planning import join_session
from tests.support.configs import write_config

MAY_18 = datetime.date(2026, 5, 18)


def at(hour: int, minute: int = 0, second: float = 0, day: datetime.date = MAY_18) -> float:
    """A local wall-clock time as the epoch seconds the service's clock returns."""
    moment = datetime.datetime.combine(day, datetime.time(hour, minute))
    return moment.timestamp() + second


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make(tmp_path):
    """make(**config sections) -> (config, ledger); the ledger is closed after the test."""
    opened = []

    def factory(**sections):
        all_to = {"address": "studio@commercialista.it", "session_gap": "10m"}
        all_to.update(sections.pop("all_to", {}))
        config = load_config(write_config(tmp_path, all_to=all_to, **sections))
        storage.prepare(config.state_dir)
        ledger = Ledger(config.state_dir)
        opened.append(ledger)
        return config, ledger

    yield factory
    for ledger in opened:
        ledger.close()


def add_document(
    config, ledger, name, now, *, kind="pdf", data=None, state="routed", reason=None, **facts
):
    """A document as routing leaves it (a spool file and its row), joined to the open session."""
    data = data if data is not None else make_pdf(text=name)
    path = config.state_dir / storage.SPOOL / name
    path.write_bytes(data)
    info = {"doc": "Fattura", "number": "1", "date": "18/05/2026", "customer_name": "", **facts}
    with ledger.transaction() as db:
        document_id = db.execute(
            "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, "
            "taken_at, state, reason, info, number, customer_name, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, '', ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                f"/export/{name}",
                f"spool/{name}",
                kind,
                len(data),
                now,
                state,
                reason,
                json.dumps(info),
                info["number"],
                info["customer_name"],
                now,
            ),
        ).lastrowid
        row = db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
        if state != "failed":
            join_session(db, config, row, now)
    return document_id


def customer_delivery(ledger, document_id, state, to, last_error=None):
    with ledger.transaction() as db:
        delivery_id = db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, message_id, created_at, "
            "next_attempt_at, last_error) VALUES ('customer', ?, ?, ?, 0, 0, ?)",
            (state, json.dumps([to]), f"<{document_id}@x.it>", last_error),
        ).lastrowid
        db.execute(
            "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, 0)",
            (delivery_id, document_id),
        )


def bundles_of(ledger):
    return ledger.query("SELECT * FROM deliveries WHERE purpose = 'bundle' ORDER BY id")


def attached(ledger, delivery_id):
    return [r["name"] for r in documents.of_delivery(ledger.db, delivery_id)]


def test_closes_after_session_gap_without_new_documents(make):
    config, ledger = make()
    clock = Clock(at(9))
    keeper = sessions.SessionKeeper(config, ledger, clock)
    add_document(config, ledger, "A.pdf", at(9))
    add_document(config, ledger, "B.pdf", at(9, 5))
    clock.now = at(9, 14, 59)
    assert keeper.step() == pytest.approx(1.0)
    assert bundles_of(ledger) == []
    clock.now = at(9, 15)
    keeper.step()
    (bundle,) = bundles_of(ledger)
    assert json.loads(bundle["to_addrs"]) == ["studio@commercialista.it"]
    assert bundle["subject"] == "Documenti emessi - sessione del 18/05/2026 (2)"
    assert attached(ledger, bundle["id"]) == ["A.pdf", "B.pdf"]
    assert keeper.step() is None  # nothing open any more
    add_document(config, ledger, "C.pdf", at(9, 20))
    assert ledger.one("SELECT session_id FROM documents WHERE name = 'C.pdf'")[0] == 2


def test_close_at_closes_at_the_daily_time(make):
    config, ledger = make(all_to={"session_gap": "2h", "close_at": "18:30"})
    clock = Clock(at(18, 0))
    keeper = sessions.SessionKeeper(config, ledger, clock)
    add_document(config, ledger, "A.pdf", at(18, 0))
    assert keeper.step() == pytest.approx(30 * 60)
    clock.now = at(18, 29, 59.5)
    keeper.step()
    assert bundles_of(ledger) == []
    clock.now = at(18, 30)
    keeper.step()
    assert len(bundles_of(ledger)) == 1
    status_at = ledger.one("SELECT closed_at FROM sessions")[0]
    assert status_at == at(18, 30)


def test_close_at_already_past_today_means_tomorrow():
    opened = at(19, 0)
    assert sessions.next_close_time(opened, "18:30") == at(
        18, 30, day=MAY_18 + datetime.timedelta(1)
    )
    assert sessions.next_close_time(at(18, 29), "18:30") == at(18, 30)
    assert sessions.next_close_time(at(18, 30), "18:30") > at(18, 30)


def test_flush_closes_at_once_and_status_shows_the_open_session(make):
    config, ledger = make(all_to={"session_gap": "10m", "close_at": "18:30"})
    clock = Clock(at(10))
    keeper = sessions.SessionKeeper(config, ledger, clock)
    assert sessions.open_session(ledger, config, clock()) is None
    assert sessions.request_close(ledger) is None
    add_document(config, ledger, "A.pdf", at(10))
    add_document(config, ledger, "B.xml", at(10, 1), kind="xml", data=b"<x/>")
    shown = sessions.open_session(ledger, config, at(10, 2))
    assert shown["count"] == 2
    assert shown["opened_at"] == at(10)
    assert shown["closes_at"] == at(10, 11)  # gap after the last document, before 18:30
    assert sessions.request_close(ledger) == shown["id"]
    keeper.step()
    assert len(bundles_of(ledger)) == 1
    assert sessions.open_session(ledger, config, clock()) is None


def test_does_not_close_while_a_member_is_still_being_routed(make):
    config, ledger = make()
    clock = Clock(at(9))
    keeper = sessions.SessionKeeper(config, ledger, clock)
    first = add_document(config, ledger, "A.pdf", at(9))
    # The address book changed: a held member is routed again (state taken).
    with ledger.transaction() as db:
        db.execute("UPDATE documents SET state = 'taken' WHERE id = ?", (first,))
    clock.now = at(9, 10)
    assert keeper.step() == pytest.approx(0.2)
    assert bundles_of(ledger) == []
    with ledger.transaction() as db:
        db.execute("UPDATE documents SET state = 'routed' WHERE id = ?", (first,))
    keeper.step()
    assert len(bundles_of(ledger)) == 1


def test_body_says_what_happened_to_each_customer_delivery(make):
    config, ledger = make(sender={"address": "fatture@example.it", "name": "Rossi S.r.l."})
    clock = Clock(at(9))
    sent = add_document(
        config,
        ledger,
        "Fattura_1_2026_C042.pdf",
        at(9),
        number="1",
        customer_name="Mario Rossi S.p.A.",
    )
    customer_delivery(ledger, sent, "sent", "mario@x.it")
    add_document(
        config,
        ledger,
        "Fattura_2_2026_C999.pdf",
        at(9),
        number="2",
        state="held",
        reason="no customer found in the address book (looked up code C999)",
    )
    refused = add_document(config, ledger, "Fattura_3_2026_C007.pdf", at(9), number="3")
    customer_delivery(ledger, refused, "failed", "beta@x.it", "550 5.1.1 user unknown")
    queued = add_document(config, ledger, "Fattura_4_2026_C007.pdf", at(9), number="4")
    customer_delivery(ledger, queued, "deferred", "beta@x.it")
    add_document(config, ledger, "IT01234567890_0000A.xml", at(9), kind="xml", data=b"<x/>")
    clock.now = at(9, 10)
    sessions.SessionKeeper(config, ledger, clock).step()
    (bundle,) = bundles_of(ledger)
    lines = bundle["body"].splitlines()
    assert lines[0] == "In allegato 5 documenti:"
    assert lines[1] == (
        "- Fattura_1_2026_C042.pdf (PDF) - Fattura n. 1 del 18/05/2026 - Mario Rossi S.p.A. "
        "- inviato a mario@x.it"
    )
    assert lines[2].endswith("- in attesa: cliente sconosciuto (cercato per codice C999)")
    assert lines[3].endswith(
        "- non inviato: rifiutato dal server di posta: «550 5.1.1 user unknown»"
    )
    assert lines[4].endswith("- in coda")
    assert lines[5].startswith("- IT01234567890_0000A.xml (XML) - Fattura n. 1")
    assert lines[5].endswith("- non previsto per il cliente")


def test_too_many_attachments_make_numbered_parts_holding_each_document_once(make):
    config, ledger = make(all_to={"max_attachments": 2})
    clock = Clock(at(9))
    names = [f"Fattura_{n}_2026_C042.pdf" for n in range(5)]
    for name in names:
        add_document(config, ledger, name, at(9))
    clock.now = at(9, 10)
    sessions.SessionKeeper(config, ledger, clock).step()
    rows = bundles_of(ledger)
    assert [(r["part"], r["parts"]) for r in rows] == [(1, 3), (2, 3), (3, 3)]
    assert rows[0]["subject"] == "Documenti emessi - sessione del 18/05/2026 (2) - parte 1 di 3"
    assert rows[2]["subject"].endswith("(1) - parte 3 di 3")
    assert [name for r in rows for name in attached(ledger, r["id"])] == names


def test_parts_built_for_real_stay_under_max_message_size(make):
    limit = 300_000
    config, ledger = make(smtp={"max_message_size": limit})
    clock = Clock(at(9))
    documents = {f"Fattura_{n}_2026_C042.pdf": make_pdf(size=90_000 + n) for n in range(6)}
    for name, data in documents.items():
        add_document(config, ledger, name, at(9), data=data)
    clock.now = at(9, 10)
    sessions.SessionKeeper(config, ledger, clock).step()
    rows = bundles_of(ledger)
    assert len(rows) > 1
    seen = []
    for row in rows:
        path, size = outbox.build(config, ledger, row)
        assert size <= limit
        message = email.message_from_bytes(path.read_bytes(), policy=policy.SMTP)
        for part in message.iter_attachments():
            assert part.get_content() == documents[part.get_filename()]
            seen.append(part.get_filename())
    assert sorted(seen) == sorted(documents)


def test_a_document_too_large_for_any_message_is_listed_not_attached_and_fails(make):
    limit = 200_000
    config, ledger = make(smtp={"max_message_size": limit})
    clock = Clock(at(9))
    small = add_document(config, ledger, "Fattura_1_2026_C042.pdf", at(9))
    big = add_document(
        config, ledger, "Fattura_2_2026_C042.pdf", at(9), data=make_pdf(size=160_000)
    )
    assert encoded_length(160_000) > limit  # passed intake (raw size under), too big in base64
    clock.now = at(9, 10)
    sessions.SessionKeeper(config, ledger, clock).step()
    (row,) = bundles_of(ledger)
    assert "Fattura_2_2026_C042.pdf (PDF)" in row["body"]
    assert row["subject"].endswith("(1)")
    listed_apart = row["body"].split("Non allegati (1):\n")[1]
    assert "Fattura_2_2026_C042.pdf (PDF)" in listed_apart and "troppo grande" in listed_apart
    path, _size = outbox.build(config, ledger, row)
    message = email.message_from_bytes(path.read_bytes(), policy=policy.SMTP)
    assert [p.get_filename() for p in message.iter_attachments()] == ["Fattura_1_2026_C042.pdf"]
    assert documents.get(ledger.db, big)["state"] == "failed"
    assert "base64" in documents.get(ledger.db, big)["reason"]
    assert documents.get(ledger.db, small)["state"] == "routed"
    assert ledger.one("SELECT COUNT(*) FROM notices WHERE text LIKE 'Fattura_2%'")[0] == 1


def test_a_file_refused_at_intake_is_listed_so_the_gap_in_numbering_is_explained(make):
    config, ledger = make()
    clock = Clock(at(9))
    add_document(config, ledger, "Fattura_1_2026_C042.pdf", at(9))
    add_document(
        config,
        ledger,
        "Fattura_2_2026_C042.pdf",
        at(9, 1),
        data=b"not a pdf",
        state="failed",
        reason="not a PDF (does not start with %PDF-)",
    )
    clock.now = at(9, 20)
    sessions.SessionKeeper(config, ledger, clock).step()
    (row,) = bundles_of(ledger)
    assert "Fattura_2_2026_C042.pdf (PDF)" in row["body"]
    assert row["body"].startswith("In allegato 1 documenti:\n- Fattura_1_2026_C042.pdf")
    listed_apart = row["body"].split("Non allegati (1):\n")[1]
    assert listed_apart.startswith("- Fattura_2_2026_C042.pdf (PDF)")
    assert "scartato all'arrivo (non è un PDF (non inizia con %PDF-))" in listed_apart
    assert attached(ledger, row["id"]) == ["Fattura_1_2026_C042.pdf"]


def test_separate_copy_of_a_bundle_carries_the_same_text(make):
    config, ledger = make(copy_to=["archivio@example.it"], copy_mode="separate")
    clock = Clock(at(9))
    add_document(config, ledger, "A.pdf", at(9))
    clock.now = at(9, 10)
    sessions.SessionKeeper(config, ledger, clock).step()
    main, copy = bundles_of(ledger)
    assert json.loads(copy["to_addrs"]) == ["archivio@example.it"]
    assert (copy["subject"], copy["body"]) == (main["subject"], main["body"])


def test_only_the_configured_kinds_join(make):
    config, ledger = make(all_to={"kinds": ["pdf"]})
    add_document(config, ledger, "A.pdf", at(9))
    add_document(config, ledger, "B.xml", at(9), kind="xml", data=b"<x/>")
    add_document(config, ledger, "C.xml.p7m", at(9), kind="p7m", data=b"0")
    joined = ledger.query("SELECT name FROM documents WHERE session_id IS NOT NULL")
    assert [r["name"] for r in joined] == ["A.pdf"]


def test_split_keeps_the_order_and_gives_an_oversized_member_no_part_of_its_own(make):
    config, _ledger = make(smtp={"max_message_size": 200_000}, all_to={"max_attachments": 3})

    def member(n, size, attachable=True):
        return bundles.Member(n, f"{n}.pdf", "pdf", size, "Fattura", str(n), "", "", "", attachable)

    members = [member(1, 50_000), member(2, 160_000, False), member(3, 50_000), member(4, 90_000)]
    parts = bundles.split(config, members)
    assert [[m.id for m in part] for part in parts] == [[1, 2, 3], [4]]
