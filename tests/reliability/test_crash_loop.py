"""Crash loop: invoices keep arriving while the service is SIGKILLed at random moments and
restarted. At the end every document was delivered and archived, none was lost, and the only
duplicates are deliveries a kill caught in the RFC 1047 window (the server had the message,
the ledger did not yet know): the DESIGN's one ambiguous case, resent with the same Message-ID.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import (
    FIGURES,
    Supervisor,
    consistency_problems,
    query,
    state_files,
)
from tests.support.service_harness import service_config, write_address_book

SEED = int(os.environ.get("RELIABILITY_SEED", "20261127"))
DOCUMENTS, CUSTOMERS, KILLS = 300, 30, 16
DROP_SPAN = 20.0  # seconds over which the documents arrive
LIFE = (0.2, 2.5)  # seconds between a start and its SIGKILL: start-up included
DOWN = (0.0, 0.4)  # seconds the service stays dead while files keep arriving
REPLY_DELAY = 0.03  # the server's pause before its 250: the window a kill can fall into


def address_of(code: str) -> str:
    return f"{code.lower()}@clienti.example"


def attachment_name(message) -> str:
    (attachment,) = list(message.iter_attachments())
    return attachment.get_filename()


def test_sigkill_loop_loses_nothing_and_duplicates_only_the_ambiguous(tmp_path, start_smtp_server):
    rng = random.Random(SEED)
    print(f"\ncrash loop: seed {SEED} (RELIABILITY_SEED=... replays another)")
    server = start_smtp_server("none")
    server.delay_data_reply(REPLY_DELAY)
    codes = [f"C{k:03d}" for k in range(1, CUSTOMERS + 1)]
    book = write_address_book(
        tmp_path / "clienti.csv",
        [(code, f"Cliente {code} S.r.l.", address_of(code), "", "", "") for code in codes],
    )
    config = service_config(
        tmp_path, server, customers={"address_book": str(book), "prefer": "email"}
    )
    documents: dict[str, tuple[str, bytes]] = {}
    for number in range(1, DOCUMENTS + 1):
        code = rng.choice(codes)
        data = make_pdf(text=f"Fattura {number} per {code}, seed {SEED}")
        documents[f"Fattura_{number}_2026_{code}.pdf"] = (address_of(code), data)
    times = sorted(rng.uniform(0, DROP_SPAN) for _ in documents)
    arrivals = sorted(zip(times, documents, strict=True))
    export, state_dir = tmp_path / "export", tmp_path / "state"
    service = Supervisor(config)
    # message_id -> the kills that found its delivery `sending`, and how many copies of it
    # the server had by then
    caught: dict[str, list[tuple[int, int]]] = defaultdict(list)
    began = time.monotonic()

    def drop_due(until: float) -> None:
        while time.monotonic() < until:
            while arrivals and arrivals[0][0] <= time.monotonic() - began:
                name = arrivals.pop(0)[1]
                drop(export, name, documents[name][1])
            time.sleep(0.005)  # the schedule's clock ticking, not a synchronisation

    try:
        for kill in range(1, KILLS + 1):
            service.start(wait=False)
            drop_due(time.monotonic() + rng.uniform(*LIFE))
            service.kill()
            sending = query(state_dir, "SELECT message_id FROM deliveries WHERE state = 'sending'")
            had = Counter(m.message["Message-ID"] for m in server.messages)
            for row in sending:
                caught[row["message_id"]].append((kill, had[row["message_id"]]))
            drop_due(time.monotonic() + rng.uniform(*DOWN))
        for _, name in arrivals:
            drop(export, name, documents[name][1])
        service.start()

        def finished() -> bool:
            rows = query(state_dir, "SELECT state, COUNT(*) AS n FROM documents GROUP BY state")
            pending = query(
                state_dir,
                "SELECT COUNT(*) AS n FROM deliveries WHERE state IN ('queued', 'sending', "
                "'deferred')",
            )
            return rows == [{"state": "done", "n": DOCUMENTS}] and pending[0]["n"] == 0

        wait_until(finished, 120)
        assert service.stop() == 0, service.log()[-3000:]
    finally:
        service.stop()
    elapsed = time.monotonic() - began

    # Every document taken exactly once, delivered to its customer, archived; none left behind.
    rows = query(state_dir, "SELECT id, name, location FROM documents")
    assert sorted(row["name"] for row in rows) == sorted(documents)
    assert not list(export.iterdir()), "files left in the export folder"
    lost = [row["name"] for row in rows if not row["location"].startswith("sent/")]
    assert lost == []
    deliveries = query(
        state_dir,
        "SELECT v.message_id, v.state, d.name FROM deliveries v "
        "JOIN attachments a ON a.delivery_id = v.id JOIN documents d ON d.id = a.document_id",
    )
    assert len(deliveries) == DOCUMENTS and {row["state"] for row in deliveries} == {"sent"}
    by_id = {row["message_id"]: row["name"] for row in deliveries}
    received = server.messages
    for message in received:
        name = by_id[message.message["Message-ID"]]
        assert attachment_name(message.message) == name
        assert message.rcpt_tos == (documents[name][0],), name
        assert message.message.get_body(("plain",)) is not None
    assert {by_id[m.message["Message-ID"]] for m in received} == set(documents)
    problems = consistency_problems(state_dir)
    assert problems == [], "\n".join(problems)
    leftovers = [path for path in state_files(state_dir) if not path.startswith("sent/")]
    assert leftovers == [], "the archive should hold every document and message sent"

    # Duplicates: only deliveries a kill found `sending`, at most one copy per such kill, and
    # byte for byte the same message (built once, resent with the same Message-ID).
    copies = Counter(m.message["Message-ID"] for m in received)
    explained = []
    for message_id, count in sorted(copies.items()):
        if count == 1:
            continue
        assert message_id in caught, f"{by_id[message_id]} arrived {count} times, never caught"
        assert count - 1 <= len(caught[message_id]), (message_id, count, caught[message_id])
        same = {m.data for m in received if m.message["Message-ID"] == message_id}
        assert len(same) == 1, f"the copies of {message_id} differ"
        why = "; ".join(
            f"kill #{kill} struck after the server stored it, before the ledger had its 250"
            if had
            else f"kill #{kill} struck with it `sending`, its copy arriving as the socket closed"
            for kill, had in caught[message_id]
        )
        explained.append(f"{by_id[message_id]} x{count}: {why}")
    resent = sum(count - 1 for count in copies.values())
    log = service.log()
    assert log.count("possible duplicate") >= resent
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]

    summary = (
        f"{DOCUMENTS} documents for {CUSTOMERS} customers over {DROP_SPAN:.0f} s, "
        f"{service.kills} SIGKILLs, seed {SEED}, {elapsed:.0f} s"
    )
    sending_total = sum(len(kills) for kills in caught.values())
    dupes = (
        f"{resent} extra cop{'y' if resent == 1 else 'ies'} of {len(explained)} deliveries; "
        f"{sending_total} deliveries were `sending` at a kill"
    )
    print(f"crash loop: {summary}\n  duplicates: {dupes}")
    for line in explained:
        print(f"    {line}")
    print(f"  files lost: {len(lost)}; ledger, spool, archive and failed/ agree")
    FIGURES.set("crash loop", summary)
    FIGURES.set("crash loop duplicates", " | ".join([dupes, *explained]))
    FIGURES.set("crash loop files lost", len(lost))
