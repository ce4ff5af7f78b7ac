"""Receipts: the service reading a PEC sender's mailbox that holds `count` receipts, each about
a message the ledger shows as sent and still waiting for its receipts.

The mailbox is a private Dovecot on loopback (imapbox.py) with the receipts already in its
Maildir and indexed: for each of count / 2 messages an accettazione (4 KB) and an avvenuta
consegna completa (the whole original with its 80 KB PDF: 115 KB), in that order, as a month
of invoicing leaves them. The ledger holds those messages (ledgerfill.py: sent ten minutes
ago, each recipient's accettazione awaited). Then the real `invoice-mailer run`, receipts on:
from the process start until the ledger holds every receipt (each stored, matched, and its
recipient's proof `delivered` at the end), its CPU and its peak RSS. Then, caught up and idle
in IMAP IDLE, one more receipt at a time delivered into the Maildir: how long until the ledger
holds it; and how much of that is the service's, after Dovecot told an IDLE client of ours.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import SENDER, Service, Workspace, quiesce
from imapbox import Dovecot
from ledgerfill import fill, message_id, recipient
from pecmail import ReceiptMaker
from sink import Sink

from invoice_mailer.receipts.mailbox import Mailbox

PDF_SIZE = 80_000  # as the other benchmarks' invoices: the delivery receipt carries it
IDLE_SAMPLES = 5
IDLE_PAUSE = 1.5  # after a receipt is recorded, the reader is back in IDLE well within this
STARTED_LINE = "invoice-mailer starting"


def run(root: Path, count: int) -> dict:
    messages = count // 2
    workspace = Workspace(root / "receipts")
    box = Dovecot(workspace.root)
    sink = Sink(workspace.root)  # nothing is sent; the config needs an SMTP server
    service: Service | None = None
    try:
        began = time.monotonic()
        # IDLE_SAMPLES more messages, their receipts not in the mailbox yet: the IDLE samples.
        fill(workspace.state_dir, messages + IDLE_SAMPLES, awaiting=True, start=time.time() - 600)
        maker = ReceiptMaker(SENDER, PDF_SIZE)
        mail = [
            maker.receipt(kind, message_id(i), recipient(i), _subject(i))
            for i in range(1, messages + 1)
            for kind in ("accettazione", "avvenuta-consegna")
        ]
        mailbox_bytes = sum(len(data) for data in mail)
        box.put(mail)
        del mail
        prepared = time.monotonic() - began
        quiesce()
        receipts = {"enabled": True, "pec": True, "imap": box.imap_config()}
        config = workspace.config(sink.port, receipts=receipts)
        wall_start = time.time()
        service = Service(config, workspace.root / "service.log")
        cpu_at_start = _cpu_once_started(service)
        with _ledger(workspace) as ledger:
            _wait_for(ledger, 2 * messages, service, timeout=max(120, count / 20))
            cpu = service.cpu_seconds() - cpu_at_start
            peak_kb = service.memory_kb("VmHWM")
            first, last = ledger.execute(
                "SELECT MIN(received_at), MAX(received_at) FROM receipts"
            ).fetchone()
            (delivered,) = ledger.execute(
                "SELECT COUNT(*) FROM delivery_recipients WHERE proof = 'delivered'"
            ).fetchone()
            if delivered != messages:
                raise RuntimeError(f"{delivered} recipients delivered, {messages} expected")
            samples = range(messages + 1, messages + IDLE_SAMPLES + 1)
            latencies, shares = _idle(box, ledger, service, maker, samples)
        rss_kb = service.memory_kb("VmRSS")
    finally:
        if service is not None:
            service.stop()
        sink.stop()
        box.stop()
    seconds = last - wall_start
    return {
        "count": 2 * messages,
        "messages": messages,
        "mailbox_mb": mailbox_bytes / 1e6,
        "prepare_seconds": prepared,
        "seconds": seconds,
        "first_seconds": first - wall_start,
        "receipts_per_second": 2 * messages / seconds,
        "cpu_ms_per_receipt": 1000 * cpu / (2 * messages),
        "peak_rss_mb": peak_kb / 1024,
        "rss_after_mb": rss_kb / 1024,
        "idle_samples_ms": [1000 * x for x in latencies],
        "idle_median_ms": 1000 * statistics.median(latencies),
        "idle_max_ms": 1000 * max(latencies),
        "idle_service_median_ms": 1000 * statistics.median(shares),
    }


def _idle(
    box: Dovecot, ledger: sqlite3.Connection, service: Service, maker: ReceiptMaker, ids: range
) -> tuple[list[float], list[float]]:
    """For each message of `ids`, its accettazione delivered into the Maildir of the idle
    service: (seconds until the ledger holds it, of which after Dovecot told our own IDLE
    connection: Dovecot waits 0.5 s after a change before it tells, NOTIFY_DELAY_MSECS)."""
    latencies, shares = [], []
    (recorded,) = ledger.execute("SELECT COUNT(*) FROM receipts").fetchone()
    with Mailbox(box.account()) as watcher:
        for i in ids:
            time.sleep(IDLE_PAUSE)  # caught up: the reader sits in IDLE again
            data = maker.receipt("accettazione", message_id(i), recipient(i), _subject(i))
            watcher.uidvalidity("INBOX")  # examined: IDLE watches the folder examined last
            with watcher.idling() as idle:
                arrived = box.deliver(data)
                if not idle.wait(30):
                    raise RuntimeError("Dovecot did not report the new receipt in 30 s")
                told = time.time()
                recorded = _wait_for(ledger, recorded + 1, service, timeout=30, every=0.002)
                done = time.time()
            latencies.append(done - arrived)
            shares.append(done - told)
    return latencies, shares


def _subject(i: int) -> str:
    return f"Fattura n. A{i} del 15/03/2025"  # as ledgerfill's deliveries have it


def _cpu_once_started(service: Service) -> float:
    """The CPU the process has spent when it logs that it starts (imports, config, ledger),
    just before its threads start: that much is not the receipts' cost."""
    deadline = time.monotonic() + 60
    while STARTED_LINE not in service.log():
        if service.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start:\n{service.log()[-3000:]}")
        time.sleep(0.005)
    return service.cpu_seconds()


@contextmanager
def _ledger(workspace: Workspace) -> Iterator[sqlite3.Connection]:
    """The service's ledger read-only, one connection for every poll."""
    path = workspace.state_dir / "ledger.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def _wait_for(
    ledger: sqlite3.Connection, wanted: int, service: Service, timeout: float, every: float = 0.1
) -> int:
    """Until the ledger holds `wanted` receipts; how many it holds."""
    deadline = time.monotonic() + timeout
    while True:
        (found,) = ledger.execute("SELECT COUNT(*) FROM receipts").fetchone()
        if found >= wanted:
            return found
        if service.process.poll() is not None:
            raise RuntimeError(f"the service exited:\n{service.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{found} of {wanted} receipts recorded after {timeout:.0f} s")
        time.sleep(every)


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory(prefix="invoice-mailer-bench-") as folder:
        print(json.dumps(run(Path(folder), count), indent=2))
