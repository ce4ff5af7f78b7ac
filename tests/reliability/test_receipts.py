"""Receipts under stress, with the real service and the real Dovecot: kill -9 while receipts
arrive loses none and counts none twice; 10,000 unrelated messages cost one pass at start and
nothing after; a PEC sender that lost the reply to the final "." waits for the accettazione
instead of sending a second copy."""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter

from invoice_mailer.demo.samples import make_pdf
from tests.support.dovecot import needs_dovecot
from tests.support.helpers import drop, wait_until
from tests.support.receiptmail import pec_receipt
from tests.support.receipts_harness import (
    PEC_CUSTOMER,
    cursor_at,
    notices_text,
    proof_of,
    receipts_config,
    receipts_rows,
    send_invoice,
    stored_receipts,
)
from tests.support.reliability_harness import FIGURES, Supervisor, consistency_problems, query

pytestmark = needs_dovecot
SEED = int(os.environ.get("RELIABILITY_SEED", "20261127"))
INVOICES, FAILING, KILLS = 12, 3, 10
LIFE = (0.4, 2.0)  # seconds between a start and its SIGKILL


def test_kill_9_while_receipts_arrive_loses_none_and_counts_none_twice(
    tmp_path, smtp_server, dovecot
):
    rng = random.Random(SEED)
    config = receipts_config(tmp_path, smtp_server, dovecot, receipts={"poll": "1s"})
    service = Supervisor(config)
    with service:
        sent = [send_invoice(tmp_path, n)["message_id"] for n in range(1, INVOICES + 1)]
    expected: dict[str, str] = {}
    mail: list[bytes] = []
    for n, mid in enumerate(sent):
        mail.append(pec_receipt("accettazione", mid, addressees={PEC_CUSTOMER: True}))
        if n < FAILING:
            failure = {"error": "no-dest", "error_detail": "casella inesistente"}
            mail.append(pec_receipt("errore-consegna", mid, recipient=PEC_CUSTOMER, **failure))
            expected[mid] = "not-delivered"
        else:
            mail.append(pec_receipt("avvenuta-consegna", mid, recipient=PEC_CUSTOMER))
            expected[mid] = "delivered"
    rng.shuffle(mail)  # a consegna may come before its accettazione
    pending = list(mail)
    for _kill in range(KILLS):
        service.start(wait=False)
        life_ends = time.monotonic() + rng.uniform(*LIFE)
        while time.monotonic() < life_ends:
            if pending and rng.random() < 0.3:
                dovecot.deliver(pending.pop(0))
            time.sleep(0.05)  # the schedule's clock ticking, not a synchronisation
        service.kill()
    for data in pending:
        dovecot.deliver(data)
    with service:
        wait_until(lambda: cursor_at(tmp_path, len(mail)), 30)
        log = service.log()
    recorded = receipts_rows(tmp_path)
    assert len(recorded) == len(mail)
    assert len({row["sha256"] for row in recorded}) == len(mail)
    assert len(stored_receipts(tmp_path)) == len(mail)  # no .part left, no second copy
    for mid, proof in expected.items():
        assert proof_of(tmp_path, mid, PEC_CUSTOMER) == proof
    told = [text for text in notices_text(tmp_path) if "did not reach" in text]
    assert len(told) == FAILING
    assert consistency_problems(tmp_path / "state") == []
    replays = log.count("; stored in ")  # each recording logs once; a replay records again
    print(
        f"\nkill -9 x{KILLS} while {len(mail)} receipts arrived: {len(recorded)} recorded once, "
        f"0 lost, {len(told)} non-delivery notices for {FAILING} failures "
        f"({replays - len(mail)} receipt(s) stored again after a kill between file and commit)"
    )
    FIGURES.set(
        "receipts: kill -9 while they arrive",
        f"{KILLS} kills, {len(mail)}/{len(mail)} receipts recorded once, none lost",
    )


def test_ten_thousand_unrelated_messages_cost_one_pass_at_start(tmp_path, smtp_server, dovecot):
    count = 10_000
    for n in range(count):
        dovecot.deliver(
            f"From: news{n % 37}@example.org\r\nTo: fatture@pec.studiorossi.it\r\n"
            f"Subject: Offerta {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\n"
            f"Testo dell'offerta numero {n}.\r\n".encode()
        )
    config = receipts_config(tmp_path, smtp_server, dovecot)
    started = time.monotonic()
    with Supervisor(config) as service:
        wait_until(lambda: cursor_at(tmp_path, count), 180)
        first_pass = time.monotonic() - started
        mid = send_invoice(tmp_path, 1)["message_id"]
        dovecot.deliver(pec_receipt("accettazione", mid, addressees={PEC_CUSTOMER: True}))
        wait_until(lambda: proof_of(tmp_path, mid, PEC_CUSTOMER) == "accepted", 15)
        first_life = service.log()
    with Supervisor(config, log_name="second.log") as service:
        dovecot.deliver(b"From: a@example.org\r\nSubject: ancora\r\n\r\nTesto.\r\n")
        wait_until(lambda: cursor_at(tmp_path, count + 2), 15)
        second_life = service.log()
    passes = re.findall(r"INBOX: (\d+) new message\(s\) read in ([\d.]+) s", first_life)
    assert [int(n) for n, _s in passes] == [count, 1]
    assert re.findall(r"INBOX: (\d+) new message", second_life) == ["1"]
    seconds = float(passes[0][1])
    print(
        f"\n{count} unrelated messages at start: one pass of {seconds:.1f} s "
        f"({count / seconds:.0f} a second; {first_pass:.1f} s from the service's start); "
        "then 1 new message read per pass, none read again after a restart"
    )
    FIGURES.set(
        "receipts: 10,000 unrelated messages at start",
        f"one pass of {seconds:.1f} s, nothing after (a restart reads only new mail)",
    )


def _copies(server) -> Counter:
    return Counter(m.message["Message-ID"] for m in server.messages)


def _all_sent(tmp_path) -> bool:
    rows = query(tmp_path / "state", "SELECT state FROM deliveries")
    return bool(rows) and all(row["state"] == "sent" for row in rows)


def test_a_pec_sender_waits_for_the_accettazione_instead_of_a_second_copy(
    tmp_path, start_smtp_server, dovecot
):
    server = start_smtp_server("none")
    server.drop_after_data(1)  # keeps the message, hangs up before its 250
    config = receipts_config(tmp_path, server, dovecot, receipts={"lost_reply_wait": "2m"})
    with Supervisor(config) as service:
        drop(tmp_path / "export", "Fattura_7_2026_C001.pdf", make_pdf(text="Fattura 7"))
        (received,) = server.wait_for_messages(1, timeout=20)
        mid = received.message["Message-ID"]
        wait_until(lambda: "waiting up to 2 min for the PEC provider's accettazione" in
                   service.log(), 15)  # fmt: skip
        # What the provider does with every message it takes.
        dovecot.deliver(pec_receipt("accettazione", mid, addressees={PEC_CUSTOMER: True}))
        wait_until(lambda: _all_sent(tmp_path), 20)
        log = service.log()
    assert _copies(server) == {mid: 1}
    assert "shows the message was taken, so it is not sent again" in log
    assert "possible duplicate" not in log
    assert proof_of(tmp_path, mid, PEC_CUSTOMER) == "accepted"
    assert consistency_problems(tmp_path / "state") == []
    print("\nreply lost after the final '.', PEC sender reading receipts: 0 extra copies")
    FIGURES.set(
        "outage: reply lost after '.', PEC sender with receipts",
        "0 extra copies (the accettazione settles it; without receipts: 1 extra copy)",
    )


def test_without_an_accettazione_the_pec_sender_resends_once_after_the_wait(
    tmp_path, start_smtp_server, dovecot
):
    server = start_smtp_server("none")
    server.drop_after_data(1)
    config = receipts_config(tmp_path, server, dovecot, receipts={"lost_reply_wait": "2s"})
    with Supervisor(config) as service:
        drop(tmp_path / "export", "Fattura_8_2026_C001.pdf", make_pdf(text="Fattura 8"))
        wait_until(lambda: _all_sent(tmp_path), 30)
        log = service.log()
    (mid,) = _copies(server)
    assert _copies(server) == {mid: 2}
    assert "waiting up to 2 s for the PEC provider's accettazione" in log
    assert "possible duplicate" in log
