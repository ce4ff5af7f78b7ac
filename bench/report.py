"""The table: each benchmark's figures as lines of measure, figure, target and verdict."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from harness import SETTLE
from latency import INTERVAL

Row = tuple[str, str, str, str, str]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _burst(r: dict) -> list[Row]:
    n = f"{r['count']:,} × 80 KB, {r['customers']} customers"
    runs = " / ".join(f"{x:.0f}" for x in r["limit_runs_msgs"])
    service = f"{r['service_msgs']:.1f} msg/s ({r['service_cpu_ms_per_msg']:.1f} ms CPU/msg)"
    ratio, floor = r["service_vs_limit"], r["service_vs_floor"]
    return [
        ("burst", f"limit: pre-built, 1 connection ({n})", f"{r['limit_msgs']:.1f} msg/s "
         f"(runs {runs})", "", ""),
        ("burst", "floor: EmailMessage loop, 1 connection", f"{r['floor_msgs']:.1f} msg/s", "", ""),
        ("burst", "service: first rename → last accepted", service, "", ""),
        ("burst", "service / limit", f"{ratio:.2f}", "≥ 0.80", _verdict(ratio >= 0.8)),
        ("burst", f"  the same, minus settle ({SETTLE:g} s, the admin's wait; no target)",
         f"{r['service_vs_limit_after_settle']:.2f}", "", ""),
        ("burst", "service / floor", f"{floor:.2f}", "> 1", _verdict(floor > 1)),
    ]  # fmt: skip


def _latency(r: dict) -> list[Row]:
    n = f"{r['count']} files, 1 per {INTERVAL * 1000:.0f} ms"
    p50, p99 = r["p50_ms"], r["p99_ms"]
    return [
        ("latency", f"p50 close → accepted, minus settle ({n})", f"{p50:.0f} ms", "≤ 50 ms",
         _verdict(p50 <= 50)),
        ("latency", "p99 close → accepted, minus settle", f"{p99:.0f} ms", "≤ 250 ms",
         _verdict(p99 <= 250)),
    ]  # fmt: skip


def _idle(r: dict) -> list[Row]:
    rows: list[Row] = []
    for mode, label in (("events", "events"), ("polling", f"polling, {r['archived']:,} archived")):
        cpu, rss = r[f"{mode}_cpu_percent"], r[f"{mode}_rss_mb"]
        rows += [
            ("idle", f"CPU over {r['seconds']:.0f} s ({label})", f"{cpu:.3f} % of a core",
             "≤ 0.05 %", _verdict(cpu <= 0.05)),
            ("idle", f"RSS ({label})", f"{rss:.1f} MB", "≤ 50 MB", _verdict(rss <= 50)),
        ]  # fmt: skip
    return rows


def _scale(r: dict) -> list[Row]:
    ratio = r["ratio"]
    return [
        ("scale", f"per document, empty ledger ({r['count']} docs in 2 turns)",
         f"{r['empty_ms']:.1f} ms ({r['empty_cpu_ms']:.1f} ms CPU)", "", ""),
        ("scale", f"per document, {r['rows']:,} documents in the ledger",
         f"{r['full_ms']:.1f} ms ({r['full_cpu_ms']:.1f} ms CPU)", "", ""),
        ("scale", "ratio full / empty, wall (CPU)", f"{ratio:.2f} ({r['cpu_ratio']:.2f})",
         "≤ 1.2", _verdict(ratio <= 1.2)),
    ]  # fmt: skip


def _startup(r: dict) -> list[Row]:
    first, target = r["first_seconds"], SETTLE + 1
    return [
        ("startup", f"process start → first accepted, {r['count']:,} files waiting",
         f"{first:.2f} s", f"≤ {target:.1f} s", _verdict(first <= target)),
        ("startup", "then SIGTERM → exit (no target)", f"{r['stop_seconds']:.1f} s", "", ""),
    ]  # fmt: skip


def _bigfile(r: dict) -> list[Row]:
    ratio = r["peak_vs_file"]
    return [
        ("bigfile", f"peak RSS (VmHWM), one {r['file_mb']:.0f} MB PDF",
         f"{r['peak_mb']:.1f} MB = {ratio:.2f} × file", "≤ 3 × file", _verdict(ratio <= 3)),
    ]  # fmt: skip


def _search(r: dict) -> list[Row]:
    p95, page = r["p95_ms"], r["page_p95_ms"]
    slowest = max(r["kinds"].items(), key=lambda item: item[1]["p95_ms"])
    return [
        ("search", f"p95 of {len(r['kinds'])} kinds × {r['repeat']}, {r['rows']:,} documents",
         f"{p95:.1f} ms (p50 {r['p50_ms']:.1f} ms)", "≤ 100 ms", _verdict(p95 <= 100)),
        ("search", f"slowest kind: {slowest[0]}", f"p95 {slowest[1]['p95_ms']:.1f} ms", "", ""),
        ("search", "the same as whole pages from invoice-mailer web",
         f"{page:.1f} ms (p50 {r['page_p50_ms']:.1f} ms)", "≤ 100 ms", _verdict(page <= 100)),
        ("search", "a document's page: its story with its receipts",
         f"p95 {r['story_p95_ms']:.1f} ms", "≤ 100 ms", _verdict(r["story_p95_ms"] <= 100)),
    ]  # fmt: skip


def _receipts(r: dict) -> list[Row]:
    rate, peak, idle = r["receipts_per_second"], r["peak_rss_mb"], r["idle_median_ms"]
    mailbox = f"{r['count']:,} receipts of {r['messages']:,} messages, {r['mailbox_mb']:.0f} MB"
    return [
        ("receipts", f"start → all recorded ({mailbox})",
         f"{r['seconds']:.1f} s = {rate:.0f} receipts/s", "≥ 167/s", _verdict(rate >= 10_000 / 60)),
        ("receipts", "CPU per receipt (no target)", f"{r['cpu_ms_per_receipt']:.2f} ms", "", ""),
        ("receipts", "peak RSS (VmHWM) reading them", f"{peak:.1f} MB", "≤ 64 MB",
         _verdict(peak <= 64)),
        ("receipts", f"IDLE: one more → recorded, median of {len(r['idle_samples_ms'])}",
         f"{idle:.0f} ms (service {r['idle_service_median_ms']:.0f} ms)", "≤ 2 s",
         _verdict(idle <= 2000)),
    ]  # fmt: skip


ROWS = {
    "burst": _burst,
    "latency": _latency,
    "idle": _idle,
    "scale": _scale,
    "startup": _startup,
    "bigfile": _bigfile,
    "search": _search,
    "receipts": _receipts,
}


def table(rows: list[Row]) -> str:
    header = ("benchmark", "measure", "figure", "target", "verdict")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def machine() -> str:
    """nproc × CPU model, kernel, Python: what the README records next to the figures."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} × {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def filesystem_of(path: Path) -> str:
    """The type of the mount holding `path` (fsync on tmpfs is free: the figures would lie)."""
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _device, point, fstype, *_ = line.split()
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind
