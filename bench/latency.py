"""Latency: an office printing invoices one by one. Each file is written in place and closed;
the figure is close → accepted by the sink, minus `settle` (the wait the admin asked for)."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from harness import SETTLE, Service, Workspace, invoice_name, quiesce, subject_number, warm_up
from sink import Sink

from invoice_mailer.demo.samples import make_pdf

INTERVAL = 0.2
PDF_SIZE = 80_000


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the p99 of 100 samples is the 99th smallest."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def run(root: Path, count: int) -> dict[str, float]:
    workspace = Workspace(root / "latency")
    sink = Sink(root / "latency")
    service = Service(workspace.config(sink.port), root / "latency" / "service.log")
    closed: dict[str, float] = {}
    try:
        service.wait_started()
        warm_up(service, sink, workspace, "W")
        quiesce()
        since = len(sink.arrivals)
        contents = [make_pdf(size=PDF_SIZE, text=f"L{n} {time.time_ns()}") for n in range(count)]
        tick = time.monotonic()
        for n, data in enumerate(contents, start=1):
            with open(workspace.export / invoice_name("L", n), "wb") as out:
                out.write(data)
            closed[f"L{n}"] = time.monotonic()
            tick += INTERVAL
            time.sleep(max(0.0, tick - time.monotonic()))
        arrivals = sink.wait_for(count, timeout=120, since=since)
    finally:
        service.stop()
        sink.stop()
    beyond = [(at - closed[subject_number(subject)] - SETTLE) * 1000 for at, _, subject in arrivals]
    return {
        "count": count,
        "p50_ms": percentile(beyond, 0.50),
        "p99_ms": percentile(beyond, 0.99),
        "max_ms": max(beyond),
        "mean_ms": statistics.fmean(beyond),
    }
