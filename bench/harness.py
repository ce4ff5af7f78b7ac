"""What every benchmark needs: a workspace (export folder, state directory, address book), the
real `invoice-mailer run` process with its CPU and memory read from /proc, and invoices.

Only the installed package is used (never tests/), so `make bench` works from a fresh clone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from invoice_mailer.demo.samples import make_pdf

CUSTOMERS = 50
SETTLE = 0.5
SENDER = "fatture@bench.example"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# To measure a change before making it: a script that patches the package, then calls
# invoice_mailer.cli.main() (bench/README.md, "Trying a change").
LAUNCHER = os.environ.get("INVOICE_MAILER_BENCH_LAUNCHER")


class Unavailable(RuntimeError):
    """A benchmark this machine cannot run (a program it needs is not installed): the table
    says it was skipped, and the run does not fail for it."""


@dataclass
class Workspace:
    """One service's folders under the benchmark's temporary directory."""

    root: Path

    def __post_init__(self) -> None:
        for folder in (self.export, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        rows = [
            f"C{n:03d};Cliente {n} S.r.l.;cliente{n}@bench.example;;IT{n:011d};\n"
            for n in range(1, CUSTOMERS + 1)
        ]
        header = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale\n"
        self.address_book.write_text(header + "".join(rows), encoding="utf-8")

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def staging(self) -> Path:
        """Same filesystem as the export folder: files are renamed in, as a program would."""
        return self.root / "staging"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def address_book(self) -> Path:
        return self.root / "clienti.csv"

    def config(self, port: int, **sections: dict) -> Path:
        """A config sending to the sink in plain SMTP, with `sections` merged over it."""
        config: dict = {
            "watch": {"folder": str(self.export), "settle": f"{SETTLE}s", "method": "events"},
            "state_dir": str(self.state_dir),
            "sender": {"address": SENDER, "name": "Bench S.r.l."},
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": "60s"},
            "customers": {"address_book": str(self.address_book), "prefer": "email"},
            "log": {"level": "info"},
        }
        for name, value in sections.items():
            config[name] = {**config.get(name, {}), **value}
        path = self.root / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path


def quiesce() -> None:
    """Write back every dirty page now: a previous step's hundreds of MB (a filled ledger, 2,000
    invoices) would otherwise be flushed in the middle of the next measurement."""
    os.sync()


def invoice_name(prefix: str, n: int) -> str:
    """Fattura_<prefix><n>_2026_C0xx.pdf: the default file-name pattern finds the customer."""
    return f"Fattura_{prefix}{n}_2026_C{n % CUSTOMERS + 1:03d}.pdf"


def subject_number(subject: str) -> str:
    """The invoice number in "Fattura n. B17 del 01/02/2026" (the default template)."""
    return subject.split(" n. ", 1)[1].split(" ", 1)[0]


def write_invoices(folder: Path, prefix: str, count: int, size: int) -> list[Path]:
    """`count` distinct valid PDFs of `size` bytes (distinct: duplicates are not sent twice)."""
    paths = []
    for n in range(1, count + 1):
        path = folder / invoice_name(prefix, n)
        path.write_bytes(make_pdf(size=size, text=f"Fattura {prefix}{n} {time.time_ns()}"))
        paths.append(path)
    return paths


def rename_all(paths: list[Path], folder: Path) -> float:
    """Rename the files into `folder` as fast as possible; return when the first one went."""
    started = time.monotonic()
    for path in paths:
        os.rename(path, folder / path.name)
    return started


class Service:
    """`python -m invoice_mailer -c CONFIG run`, its log in a file, read through /proc."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log_path = config, log
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.started = time.monotonic()
        program = [LAUNCHER] if LAUNCHER else ["-m", "invoice_mailer"]
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed args)
            [sys.executable, *program, "-c", str(config), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "invoice-mailer starting" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{self.log()[-3000:]}")
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User + system time of the whole process (all threads), from /proc/PID/stat."""
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def thread_cpu_seconds(self) -> float:
        """CPU time of the threads alive now, to the nanosecond (/proc/PID/task/*/schedstat):
        what an idle service spends in a minute is a few clock ticks of cpu_seconds()."""
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that ended meanwhile
        return total / 1e9

    def memory_kb(self, field: str = "VmRSS") -> int:
        """VmRSS (now) or VmHWM (peak) of the process, in kB, from /proc/PID/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} in /proc/{self.pid}/status")

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM; return how long it took to exit (killed after `timeout`)."""
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return time.monotonic() - began

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def warm_up(service: Service, sink, workspace: Workspace, prefix: str) -> None:
    """One document through the whole pipeline: the service is up, connected and idle after."""
    (path,) = write_invoices(workspace.staging, prefix, 1, 20_000)
    since = len(sink.arrivals)
    rename_all([path], workspace.export)
    sink.wait_for(1, timeout=60, since=since)
    time.sleep(SETTLE + 0.5)  # let it settle back to idle: the benchmark wants an idle start
