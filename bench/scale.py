"""Scale: does a document cost more when the ledger already holds a million of them?

The same burst into two services, one with an empty ledger and one whose ledger was filled
with finished documents beforehand; the figure is wall time (and CPU time) per document.
"""

from __future__ import annotations

from pathlib import Path

from burst import PDF_SIZE, service_burst
from harness import Service, Workspace, warm_up, write_invoices
from ledgerfill import fill
from sink import Sink


def _per_document(root: Path, sink: Sink, rows: int, count: int) -> dict[str, float]:
    workspace = Workspace(root)
    filled = fill(workspace.state_dir, rows) if rows else 0.0
    files = write_invoices(workspace.staging, "S", count, PDF_SIZE)
    service = Service(workspace.config(sink.port), root / "service.log")
    try:
        service.wait_started()
        warm_up(service, sink, workspace, "W")
        cpu = service.cpu_seconds()
        seconds, _ = service_burst(sink, workspace, files)
        cpu = service.cpu_seconds() - cpu
    finally:
        service.stop()
    return {"ms": 1000 * seconds / count, "cpu_ms": 1000 * cpu / count, "fill_seconds": filled}


def run(root: Path, rows: int, count: int) -> dict[str, float]:
    sink = Sink(root)
    try:
        empty = _per_document(root / "scale-empty", sink, 0, count)
        full = _per_document(root / "scale-full", sink, rows, count)
    finally:
        sink.stop()
    return {
        "rows": rows,
        "count": count,
        "empty_ms": empty["ms"],
        "full_ms": full["ms"],
        "empty_cpu_ms": empty["cpu_ms"],
        "full_cpu_ms": full["cpu_ms"],
        "ratio": full["ms"] / empty["ms"],
        "cpu_ratio": full["cpu_ms"] / empty["cpu_ms"],
        "fill_seconds": full["fill_seconds"],
    }
