"""What the service costs when there is nothing to do, and at most for one very large file."""

from __future__ import annotations

import time
from pathlib import Path

from harness import Service, Workspace, quiesce, rename_all, warm_up
from ledgerfill import fill
from sink import Sink

from invoice_mailer.demo.samples import make_pdf

STARTUP_GRACE = 3.0  # the first scans and recoveries are over by then


def idle(root: Path, seconds: float, archived: int) -> dict[str, float]:
    """CPU and RSS of two idle services over the same `seconds`: events mode with an empty
    state, and polling mode with `archived` documents already done and filed."""
    events = Workspace(root / "idle-events")
    polling = Workspace(root / "idle-polling")
    filled = fill(polling.state_dir, archived, with_files=True)
    quiesce()
    sink = Sink(root / "idle-events")
    services = {
        "events": Service(events.config(sink.port), events.root / "service.log"),
        "polling": Service(
            polling.config(sink.port, watch={"method": "polling"}), polling.root / "service.log"
        ),
    }
    result: dict[str, float] = {"seconds": seconds, "archived": archived, "fill_seconds": filled}
    try:
        for service in services.values():
            service.wait_started()
        time.sleep(STARTUP_GRACE)
        before = {name: service.thread_cpu_seconds() for name, service in services.items()}
        began = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        for name, service in services.items():
            cpu = service.thread_cpu_seconds() - before[name]
            result[f"{name}_cpu_percent"] = 100 * cpu / elapsed
            result[f"{name}_rss_mb"] = service.memory_kb("VmRSS") / 1024
    finally:
        for service in services.values():
            service.stop()
        sink.stop()
    return result


def big_file(root: Path, size: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of the service while it takes, sends and files one `size`-byte PDF."""
    workspace = Workspace(root / "bigfile")
    sink = Sink(workspace.root)
    limit = f"{(size * 3) // 1_000_000}MB"  # base64 makes it 4/3 bigger: room for the message
    config = workspace.config(sink.port, smtp={"max_message_size": limit})
    service = Service(config, workspace.root / "service.log")
    try:
        service.wait_started()
        warm_up(service, sink, workspace, "W")
        before = service.memory_kb("VmHWM")
        path = workspace.staging / "Fattura_G1_2026_C001.pdf"
        path.write_bytes(make_pdf(size=size, text="big"))
        quiesce()
        since = len(sink.arrivals)
        began = rename_all([path], workspace.export)
        (arrival,) = sink.wait_for(1, timeout=300, since=since)
        archived = workspace.state_dir / "sent"
        deadline = time.monotonic() + 60
        while not list(archived.rglob(path.name)) and time.monotonic() < deadline:
            time.sleep(0.05)
        peak = service.memory_kb("VmHWM")
    finally:
        service.stop()
        sink.stop()
    return {
        "file_mb": size / 1e6,
        "message_mb": arrival[1] / 1e6,
        "seconds": arrival[0] - began,
        "hwm_before_mb": before * 1024 / 1e6,
        "peak_mb": peak * 1024 / 1e6,
        "peak_vs_file": peak * 1024 / size,
    }
