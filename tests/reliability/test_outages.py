"""Mail server outages, as the DESIGN's failure table promises them: a relay that is down, one
that answers 421, one that loses the connection after the final ".", and one that takes 20 s
to answer it. Each time every document arrives, once (or, in the RFC 1047 window, at most
twice with the same Message-ID and a warning)."""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import (
    FIGURES,
    Supervisor,
    consistency_problems,
    hold,
    query,
)
from tests.support.service_harness import service_config, write_address_book
from tests.support.smtpserver import (
    SmtpTestServer,
    free_port,
)

CUSTOMERS = [
    ("C001", "Alfa S.r.l.", "alfa@clienti.example", "", "", ""),
    ("C002", "Beta S.p.A.", "beta@clienti.example", "", "", ""),
    ("C003", "Gamma S.n.c.", "gamma@clienti.example", "", "", ""),
]
OUTAGE = 30.0  # seconds the relay stays down after the service starts


def configure(tmp_path, server, **sections):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    customers = {"address_book": str(book), "prefer": "email"}
    return service_config(tmp_path, server, customers=customers, **sections)


def drop_invoices(tmp_path, count: int, tag: str) -> list[str]:
    names = []
    for number in range(1, count + 1):
        code = CUSTOMERS[number % len(CUSTOMERS)][0]
        name = f"Fattura_{tag}{number}_2026_{code}.pdf"
        drop(tmp_path / "export", name, make_pdf(text=f"Fattura {tag}{number} per {code}"))
        names.append(name)
    return names


def deliveries(tmp_path) -> list[dict]:
    return query(tmp_path / "state", "SELECT * FROM deliveries ORDER BY id")


def all_sent(tmp_path, count: int) -> bool:
    rows = deliveries(tmp_path)
    return len(rows) == count and all(row["state"] == "sent" for row in rows)


def assert_each_once(tmp_path, server, count: int) -> None:
    """Every delivery reached the server exactly once, and the ledger agrees with the disk."""
    copies = Counter(m.message["Message-ID"] for m in server.messages)
    assert sorted(copies) == sorted(row["message_id"] for row in deliveries(tmp_path))
    assert set(copies.values()) == {1}, copies
    assert len(server.messages) == count
    assert consistency_problems(tmp_path / "state") == []


def test_relay_down_at_start_then_up_delivers_everything_once(tmp_path):
    port = free_port()
    config = configure(tmp_path, SimpleNamespace(host="127.0.0.1", port=port))
    server = SmtpTestServer("none", port=port)  # started later, where the service looks
    try:
        with Supervisor(config) as service:
            names = drop_invoices(tmp_path, 5, "D")
            wait_until(lambda: len(deliveries(tmp_path)) == 5, 15)

            def waiting_not_failed() -> bool:
                states = {row["state"] for row in deliveries(tmp_path)}
                return service.running() and states <= {"queued", "sending", "deferred"}

            hold(OUTAGE, waiting_not_failed)
            # Each was tried and deferred (one may be in its quick retry right now).
            assert all("refused" in (row["last_error"] or "") for row in deliveries(tmp_path))
            tries = sum(row["attempts"] for row in deliveries(tmp_path))
            server.start()
            wait_until(lambda: all_sent(tmp_path, 5), 20)
            log = service.log()
        assert_each_once(tmp_path, server, 5)
        received = {a.get_filename() for m in server.messages for a in m.message.iter_attachments()}
        assert received == set(names)
        assert "Connection refused" in log and "next attempt in" in log
    finally:
        server.stop()
    print(f"\nrelay down {OUTAGE:.0f} s: 5 documents, {tries} refused tries, each delivered once")
    FIGURES.set("outage: relay down", f"{OUTAGE:.0f} s, {tries} refused tries, 5/5 sent once")


def test_421_for_a_while_defers_then_delivers_once(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    server.refuse_connections(10_000)  # "421 Service not available" to every connection
    config = configure(tmp_path, server)
    with Supervisor(config) as service:
        drop_invoices(tmp_path, 3, "R")

        def all_deferred_by_421() -> bool:
            # last_error is written when a delivery is deferred; one may be retrying right now.
            rows = deliveries(tmp_path)
            return len(rows) == 3 and all("421" in (row["last_error"] or "") for row in rows)

        wait_until(all_deferred_by_421, 30)
        refused = sum(1 for verbs in server.connections if not verbs)
        server.reset_faults()
        wait_until(lambda: all_sent(tmp_path, 3), 20)
        assert "421" in service.log()
    assert refused >= 2
    assert_each_once(tmp_path, server, 3)
    print(f"\n421 to {refused} connections: deferred, then 3/3 delivered once")
    FIGURES.set("outage: 421", f"{refused} connections refused, 3/3 deferred then sent once")


def test_connection_lost_after_final_dot_gives_at_most_one_extra_copy(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    server.drop_after_data(1)  # keeps the first message, hangs up before its 250
    config = configure(tmp_path, server)
    with Supervisor(config) as service:
        drop_invoices(tmp_path, 2, "L")
        wait_until(lambda: all_sent(tmp_path, 2), 20)
        log = service.log()
    copies = Counter(m.message["Message-ID"] for m in server.messages)
    assert sorted(copies.values()) == [1, 2], copies
    (twice,) = [message_id for message_id, count in copies.items() if count == 2]
    assert len({m.data for m in server.messages if m.message["Message-ID"] == twice}) == 1
    assert "possible duplicate" in log and twice in log
    assert consistency_problems(tmp_path / "state") == []
    print("\nreply lost after the final '.': 1 extra copy, same Message-ID and bytes, logged")
    FIGURES.set("outage: reply lost after '.'", "1 extra copy (same Message-ID, same bytes)")


def test_slow_reply_to_final_dot_is_waited_for(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    server.delay_data_reply(20)
    config = configure(tmp_path, server, smtp={"timeout": "5s"})
    started = time.monotonic()
    with Supervisor(config) as service:
        drop_invoices(tmp_path, 1, "S")
        server.wait_for_messages(1, timeout=15)
        wait_until(lambda: all_sent(tmp_path, 1), 40)
        waited = time.monotonic() - started
        log = service.log()
    (row,) = deliveries(tmp_path)
    assert row["attempts"] == 1 and row["last_error"] is None
    assert "quick retry" not in log and "possible duplicate" not in log
    assert_each_once(tmp_path, server, 1)
    print(f"\n250 after 20 s (smtp.timeout 5 s): one copy, one attempt ({waited:.0f} s)")
    FIGURES.set("outage: 250 after 20 s", "no timeout (smtp.timeout 5 s), one copy, one attempt")
