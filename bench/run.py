"""Run the benchmarks of bench/README.md and print one table with the targets' verdicts.

    python bench/run.py                 # all of them, full size (what `make bench` runs)
    python bench/run.py --quick         # smaller counts: a smoke run in about two minutes
    python bench/run.py burst latency   # only these
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import burst
import footprint
import latency
import scale
import startup
from harness import SETTLE

FULL = {
    "burst": 2000,
    "latency": 100,
    "idle_seconds": 60,
    "archived": 5000,
    "scale_rows": 1_000_000,
    "scale_docs": 400,
    "startup": 10_000,
    "big": 25_000_000,
}
QUICK = {
    "burst": 200,
    "latency": 20,
    "idle_seconds": 10,
    "archived": 5000,
    "scale_rows": 100_000,
    "scale_docs": 100,
    "startup": 1000,
    "big": 25_000_000,
}
NAMES = ("burst", "latency", "idle", "scale", "startup", "bigfile")

Row = tuple[str, str, str, str, str]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def run_one(name: str, root: Path, sizes: dict) -> dict:
    if name == "burst":
        return burst.run(root, sizes["burst"])
    if name == "latency":
        return latency.run(root, sizes["latency"])
    if name == "idle":
        return footprint.idle(root, sizes["idle_seconds"], sizes["archived"])
    if name == "scale":
        return scale.run(root, sizes["scale_rows"], sizes["scale_docs"])
    if name == "startup":
        return startup.run(root, sizes["startup"])
    return footprint.big_file(root, sizes["big"])


def rows_of(name: str, r: dict) -> list[Row]:
    """The table lines of one benchmark's result: measure, figure, target, verdict."""
    if name == "burst":
        n = f"{r['count']:,} × 80 KB"
        return [
            (name, f"limit: pre-built, 1 connection ({n})", f"{r['limit_msgs']:.1f} msg/s", "", ""),
            (name, "floor: EmailMessage loop, 1 connection", f"{r['floor_msgs']:.1f} msg/s", "", ""),
            (name, "service: rename → last accepted", f"{r['service_msgs']:.1f} msg/s", "", ""),
            (name, "service / limit", f"{r['service_vs_limit']:.2f}", "≥ 0.80",
             _verdict(r["service_vs_limit"] >= 0.8)),
            (name, "service / floor", f"{r['service_vs_floor']:.2f}", "> 1", _verdict(
                r["service_vs_floor"] > 1)),
        ]  # fmt: skip
    if name == "latency":
        n = f"{r['count']} files, 1 per {latency.INTERVAL * 1000:.0f} ms"
        return [
            (name, f"p50 close → accepted − settle ({n})", f"{r['p50_ms']:.0f} ms", "≤ 50 ms",
             _verdict(r["p50_ms"] <= 50)),
            (name, "p99 close → accepted − settle", f"{r['p99_ms']:.0f} ms", "≤ 250 ms",
             _verdict(r["p99_ms"] <= 250)),
        ]  # fmt: skip
    if name == "idle":
        out = []
        for mode, label in (("events", "events, empty"), ("polling", f"polling, {r['archived']:,} archived")):
            cpu, rss = r[f"{mode}_cpu_percent"], r[f"{mode}_rss_mb"]
            out += [
                (name, f"CPU over {r['seconds']:.0f} s ({label})", f"{cpu:.3f} % of a core",
                 "≤ 0.2 %", _verdict(cpu <= 0.2)),
                (name, f"RSS ({label})", f"{rss:.1f} MB", "≤ 50 MB", _verdict(rss <= 50)),
            ]  # fmt: skip
        return out
    if name == "scale":
        rows = f"{r['rows']:,}"
        return [
            (name, f"per document, empty ledger ({r['count']} docs)",
             f"{r['empty_ms']:.1f} ms ({r['empty_cpu_ms']:.1f} ms CPU)", "", ""),
            (name, f"per document, {rows} documents in the ledger",
             f"{r['full_ms']:.1f} ms ({r['full_cpu_ms']:.1f} ms CPU)", "", ""),
            (name, "ratio full / empty (wall)", f"{r['ratio']:.2f} (CPU {r['cpu_ratio']:.2f})",
             "≤ 1.2", _verdict(r["ratio"] <= 1.2)),
        ]  # fmt: skip
    if name == "startup":
        target = SETTLE + 2
        return [
            (name, f"first message, {r['count']:,} files waiting", f"{r['first_seconds']:.2f} s",
             f"≤ {target:.1f} s", _verdict(r["first_seconds"] <= target)),
            (name, "SIGTERM right after → exit", f"{r['stop_seconds']:.1f} s", "", ""),
        ]  # fmt: skip
    return [
        (name, f"peak RSS (VmHWM), one {r['file_mb']:.0f} MB PDF",
         f"{r['peak_mb']:.1f} MB = {r['peak_vs_file']:.2f} × file", "≤ 3 × file",
         _verdict(r["peak_vs_file"] <= 3)),
    ]  # fmt: skip


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {model}, Linux {platform.release()}, Python {platform.python_version()}"


def filesystem_of(path: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _device, point, fstype, *_ = line.split()
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def table(rows: list[Row]) -> str:
    header = ("benchmark", "measure", "figure", "target", "verdict")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"run only these: {', '.join(NAMES)}"
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter idle")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--workdir", type=Path, help="where to work (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, ledgers)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(NAMES)})")
    names = args.names or list(NAMES)
    sizes = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-", dir=args.workdir))
    fs = filesystem_of(root)
    print(f"invoice-mailer benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}", flush=True)
    print(f"machine: {machine()}; work folder {root} on {fs}", flush=True)
    if fs in ("tmpfs", "ramfs"):
        print("warning: fsync is free on tmpfs; use --workdir on a real disk", flush=True)
    results: dict[str, dict] = {}
    rows: list[Row] = []
    began = time.monotonic()
    try:
        for name in names:
            started = time.monotonic()
            print(f"  {name} …", end="", flush=True)
            try:
                results[name] = run_one(name, root, sizes)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                print(f" failed: {exc!r}", flush=True)
                rows.append((name, "did not complete", type(exc).__name__, "", "FAIL"))
                continue
            print(f" {time.monotonic() - started:.0f} s", flush=True)
            rows += rows_of(name, results[name])
    finally:
        if args.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'quick' if args.quick else 'full'} run, {time.monotonic() - began:.0f} s\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if any(row[4] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
