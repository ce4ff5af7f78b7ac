"""Startup: the service was down while the invoicing program kept writing; at start thousands
of files wait. The figure is from starting the process to the first message accepted."""

from __future__ import annotations

from pathlib import Path

from harness import Service, Workspace, quiesce, write_invoices
from sink import Sink

PDF_SIZE = 10_000  # the count is what matters here; 10,000 × 80 KB would only fill the disk


def run(root: Path, count: int) -> dict[str, float]:
    workspace = Workspace(root / "startup")
    write_invoices(workspace.export, "T", count, PDF_SIZE)
    quiesce()
    sink = Sink(workspace.root)
    service = Service(workspace.config(sink.port), workspace.root / "service.log")
    try:
        (first,) = sink.wait_for(1, timeout=120)
        stop_seconds = service.stop(timeout=60)
        sink.poll()
        sent_before_stop = len(sink.arrivals)
    finally:
        service.kill()
        sink.stop()
    return {
        "count": count,
        "first_seconds": first[0] - service.started,
        "stop_seconds": stop_seconds,
        "sent_before_stop": sent_before_stop,
    }
