"""Run the benchmarks of bench/README.md and print one table with the targets' verdicts.

`python bench/run.py` runs them all at full size (what `make bench` does); `--quick` uses
smaller counts (a smoke run in about a minute); `python bench/run.py burst latency` runs only
those two.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import burst
import footprint
import latency
import receipts
import report
import scale
import search
import startup
from harness import Unavailable
from sink import Sink

FULL = {
    "burst": 2000,
    "latency": 100,
    "idle_seconds": 60,
    "archived": 5000,
    "scale_rows": 1_000_000,
    "scale_docs": 250,
    "startup": 10_000,
    "big": 25_000_000,
    "search_rows": 1_000_000,
    "receipts": 10_000,
}
QUICK = {
    "burst": 200,
    "latency": 20,
    "idle_seconds": 10,
    "archived": 5000,
    "scale_rows": 100_000,
    "scale_docs": 50,
    "startup": 1000,
    "big": 25_000_000,
    "search_rows": 100_000,
    "receipts": 1_000,
}
NAMES = tuple(report.ROWS)


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
    if name == "search":
        return search.run(root, sizes["search_rows"])
    if name == "receipts":
        return receipts.run(root, sizes["receipts"])
    return footprint.big_file(root, sizes["big"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="invoice-mailer benchmarks (bench/README.md)")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only: {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter idle")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--workdir", type=Path, help="where to work (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, ledgers)")
    parser.add_argument(
        "--no-pipelining", action="store_true", help="sinks that do not offer PIPELINING"
    )
    args = parser.parse_args(argv)
    Sink.pipelining = not args.no_pipelining
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(NAMES)})")
    names = args.names or list(NAMES)
    sizes = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-", dir=args.workdir))
    fs = report.filesystem_of(root)
    today = datetime.datetime.now(tz=datetime.UTC).astimezone()
    sinks = "with PIPELINING" if Sink.pipelining else "without PIPELINING"
    print(f"invoice-mailer benchmarks, {today:%Y-%m-%d %H:%M}; sinks {sinks}", flush=True)
    print(f"machine: {report.machine()}; work folder {root} ({fs})", flush=True)
    if fs in ("tmpfs", "ramfs"):
        print("warning: fsync costs nothing on tmpfs; pass --workdir on a real disk", flush=True)
    results: dict[str, dict] = {}
    rows: list[report.Row] = []
    began = time.monotonic()
    try:
        for name in names:
            started = time.monotonic()
            print(f"  {name} …", end="", flush=True)
            try:
                results[name] = run_one(name, root, sizes)
            except Unavailable as exc:
                print(f" skipped: {exc}", flush=True)
                rows.append((name, f"skipped: {exc}", "", "", "skip"))
                continue
            except Exception as exc:  # a broken benchmark must not hide the others' figures
                print(f" failed: {exc!r}", flush=True)
                rows.append((name, "did not complete", type(exc).__name__, "", "FAIL"))
                continue
            print(f" {time.monotonic() - started:.0f} s", flush=True)
            rows += report.ROWS[name](results[name])
    finally:
        if args.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'quick' if args.quick else 'full'} run, {time.monotonic() - began:.0f} s\n")
    print(report.table(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if any(row[4] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
