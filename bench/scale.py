"""Scale: does a document cost more when the ledger already holds a million of them?

Two services run side by side against one sink: one with an empty ledger, one whose ledger
was filled beforehand with finished documents (ledgerfill.py). They take turns (empty, full,
empty, full …) with the same burst, so that the drift of this machine's disk over a minute
falls on both alike; the figure is wall time (and CPU time) per document, summed over turns.
"""

from __future__ import annotations

from pathlib import Path

from burst import PDF_SIZE, service_burst
from harness import Service, Workspace, quiesce, warm_up, write_invoices
from ledgerfill import fill
from sink import Sink

ROUNDS = 2


def run(root: Path, rows: int, count: int) -> dict[str, float]:
    """`count` documents per turn, ROUNDS turns each; `rows` documents in the full ledger."""
    workspaces = {"empty": Workspace(root / "scale-empty"), "full": Workspace(root / "scale-full")}
    filled = fill(workspaces["full"].state_dir, rows)
    sink = Sink(root / "scale-empty")
    services: dict[str, Service] = {}
    wall = {"empty": 0.0, "full": 0.0}
    cpu = {"empty": 0.0, "full": 0.0}
    try:
        for name, workspace in workspaces.items():
            services[name] = Service(workspace.config(sink.port), workspace.root / "service.log")
        for name, service in services.items():
            service.wait_started()
            warm_up(service, sink, workspaces[name], f"W{name}")
        for turn in range(ROUNDS):
            for name, service in services.items():
                files = write_invoices(workspaces[name].staging, f"S{turn}", count, PDF_SIZE)
                quiesce()
                before = service.cpu_seconds()
                seconds, _ = service_burst(sink, workspaces[name], files)
                wall[name] += seconds
                cpu[name] += service.cpu_seconds() - before
    finally:
        for service in services.values():
            service.stop()
        sink.stop()
    total = ROUNDS * count
    return {
        "rows": rows,
        "count": total,
        "empty_ms": 1000 * wall["empty"] / total,
        "full_ms": 1000 * wall["full"] / total,
        "empty_cpu_ms": 1000 * cpu["empty"] / total,
        "full_cpu_ms": 1000 * cpu["full"] / total,
        "ratio": wall["full"] / wall["empty"],
        "cpu_ratio": cpu["full"] / cpu["empty"],
        "fill_seconds": filled,
    }
