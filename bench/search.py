"""Search: how long the office waits for an answer on a ledger of a million documents.

The ledger is filled by ledgerfill.py (each document with its sent customer message); the
searches are the office's questions, each asked REPEAT times with a different target: a number,
"Fattura" and a number, a customer's name (20,000 documents each) and a bare prefix of it (all
of them), a code, a P.IVA, a whole file name, a recipient, a Message-ID, a PEC receipt's
identificativo, an SdI notice's IdentificativoSdI, one day, and a name narrowed by a day and by
a state no document is in (the worst case: every match is looked at). Each search opens the
ledger read-only, as a page request does, and asks for 50 (+1) results. Then the same questions
through the real `invoice-mailer web` process over HTTP, whole page; and documents' pages, each
story with its receipts (two per message, and an SdI notice on every tenth document).
"""

from __future__ import annotations

import datetime
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml
from ledgerfill import fill

from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.office.search import Search, find

REPEAT = 40
LIMIT = 50


def questions(rows: int, day: datetime.date, rng: random.Random) -> dict[str, list[Search]]:
    """kind -> REPEAT searches, as the office would type them."""

    def i() -> int:
        return rng.randint(1, rows)

    def k() -> int:
        return rng.randint(1, 50)

    asked = {
        "number": lambda: Search(f"A{i()}"),
        "Fattura + number": lambda: Search(f"Fattura A{i()}"),
        "customer name": lambda: Search(f"Cliente {k()}"),
        "name prefix (all match)": lambda: Search("clien"),
        "customer code": lambda: Search(f"C{k():03d}"),
        "P.IVA": lambda: Search(f"IT{10000000000 + k():011d}"),
        "file name": lambda: Search(f"Fattura_A{(n := i())}_2025_C{n % 50 + 1:03d}.pdf"),
        "recipient": lambda: Search(f"cliente{k()}@bench.example"),
        "Message-ID": lambda: Search(f"<{i():032x}@bench.example>"),
        "identificativo (PEC)": lambda: Search(f"opec210.{i()}.612.1.53@pec.bench.example"),
        "IdentificativoSdI": lambda: Search(f"{4000000 + 10 * (i() // 10 or 1)}"),
        "one day": lambda: Search(since=day, until=day),
        "name + day": lambda: Search(f"Cliente {k()}", since=day, until=day),
        "name + state, none match": lambda: Search(f"Cliente {k()}", states=(DocumentState.HELD,)),
    }
    return {kind: [make() for _ in range(REPEAT)] for kind, make in asked.items()}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(root: Path, rows: int) -> dict:
    state_dir = root / "search" / "state"
    filled = fill(state_dir, rows, receipts=True)
    with Ledger(state_dir, readonly=True) as ledger:
        first = ledger.scalar("SELECT MIN(taken_at) FROM documents")
    day = datetime.datetime.fromtimestamp(first, tz=datetime.UTC).astimezone().date()
    asked = questions(rows, day, random.Random(17))  # noqa: S311 (which targets, not secrets)
    timings: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    for kind, searches in asked.items():
        for search in searches:
            began = time.perf_counter()
            with Ledger(state_dir, readonly=True) as ledger:
                result = find(ledger, search, LIMIT)
            timings.setdefault(kind, []).append(time.perf_counter() - began)
            found[kind] = found.get(kind, 0) + len(result.rows)
    every = [t for values in timings.values() for t in values]
    result = {
        "rows": rows,
        "fill_seconds": filled,
        "repeat": REPEAT,
        "p50_ms": 1000 * statistics.median(every),
        "p95_ms": 1000 * percentile(every, 0.95),
        "max_ms": 1000 * max(every),
        "kinds": {
            kind: {
                "p50_ms": 1000 * statistics.median(values),
                "p95_ms": 1000 * percentile(values, 0.95),
                "found": found[kind] / len(values),
            }
            for kind, values in timings.items()
        },
    }
    pick = random.Random(18)  # noqa: S311 (which documents, not secrets)
    stories = [pick.randint(1, rows) for _ in range(REPEAT)]
    pages = _pages(root, state_dir, asked, stories)
    result["page_p95_ms"], result["page_p50_ms"], result["story_p95_ms"] = pages
    return result


def _pages(
    root: Path, state_dir: Path, asked: dict[str, list[Search]], stories: list[int]
) -> tuple[float, float, float]:
    """The same searches as whole pages from the real web process (HTML, over loopback);
    then the p95 of the documents `stories`, each a page with its story and receipts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = root / "search" / "config.yaml"
    (root / "search" / "export").mkdir(exist_ok=True)
    config.write_text(
        yaml.safe_dump(
            {
                "watch": {"folder": str(root / "search" / "export")},
                "state_dir": str(state_dir),
                "sender": {"address": "fatture@bench.example"},
                "smtp": {"host": "127.0.0.1", "security": "none", "port": 2525},
                "web": {"listen": f"127.0.0.1:{port}"},
            }
        )
    )
    log = (root / "search" / "web.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed args)
        [sys.executable, "-m", "invoice_mailer", "-c", str(config), "web"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        timings = []
        for searches in asked.values():
            for search in searches[:10]:
                query = {"q": search.text, "dal": search.since or "", "al": search.until or ""}
                if search.states:
                    query["stato"] = search.states[0]
                url = f"http://127.0.0.1:{port}/?{urllib.parse.urlencode(query)}"
                began = time.perf_counter()
                with urllib.request.urlopen(url, timeout=30) as response:
                    response.read()
                timings.append(time.perf_counter() - began)
        told = []
        for document in stories:
            began = time.perf_counter()
            url = f"http://127.0.0.1:{port}/documento/{document}"
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our loopback page)
                if b"Ricevuta di avvenuta consegna" not in response.read():
                    raise RuntimeError(f"{url}: the story has no receipts")
            told.append(time.perf_counter() - began)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    return (
        1000 * percentile(timings, 0.95),
        1000 * statistics.median(timings),
        1000 * percentile(told, 0.95),
    )


if __name__ == "__main__":
    import tempfile

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="invoice-mailer-bench-") as folder:
        figures = run(Path(folder), count)
    for kind, values in figures.pop("kinds").items():
        print(
            f"{kind:<28} p50 {values['p50_ms']:7.1f} ms  p95 {values['p95_ms']:7.1f} ms  "
            f"found {values['found']:.1f}"
        )
    print(figures)
