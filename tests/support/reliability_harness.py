"""Tools of the reliability suite: a service process that can be SIGKILLed and restarted again
and again, the check that ledger and state directory agree, and what the wire and /proc say.
(An SMTP server that comes back on the port it was down on: SmtpTestServer(port=...).)"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from invoice_mailer.ledger.database import Ledger
from tests.support.helpers import wait_until

# A line of /etc/passwd that no invoice, log line or message of ours may ever contain.
PASSWD_MARK = b"root:x:0:0:"
STATE_FOLDERS = ("spool", "sent", "failed", "outgoing")
EVIL = "evil@attacker.example"
# An RFC 2047 encoded word hiding CR/LF: Python < 3.11.10 decodes it into raw header lines.
HIDDEN = base64.b64encode(f"x\r\nReply-To: {EVIL}\r\nX-Injected: yes".encode()).decode()
ENCODED_WORD = f"=?utf-8?b?{HIDDEN}?="
# The header block of every message the service writes (Cc only with copy_to).
HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "X-Mailer"}
HEADERS |= {"Content-Type"}


class Figures:
    """The numbers the issue's closing note asks for, in the order they were first set."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def set(self, key: str, value: object) -> None:
        self._values[key] = str(value)

    def lines(self) -> list[str]:
        return [f"{key}: {value}" for key, value in self._values.items()]


FIGURES = Figures()


# Plain log lines with timestamps, also when the tests themselves run under systemd.
_PLAIN_LOG_ENV = {name: value for name, value in os.environ.items() if name != "JOURNAL_STREAM"}


class Supervisor:
    """`python -m invoice_mailer -c CONFIG run`, killed and restarted at will; one log for all
    its lives. Unlike tests.support.service_harness.ServiceProcess, start() need not wait for the
    service to be up, so that a SIGKILL can land anywhere, start-up included."""

    def __init__(self, config: Path, log_name: str = "service.log"):
        self.config = config
        self.state_dir = Path(yaml.safe_load(config.read_text())["state_dir"])
        self.log_path = config.parent / log_name
        self.process: subprocess.Popen | None = None
        self.kills = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, wait: bool = True) -> Supervisor:
        assert self.process is None or self.process.poll() is not None, "already running"
        starts = self.log().count("invoice-mailer starting")
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "invoice_mailer", "-c", str(self.config), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_PLAIN_LOG_ENV,
            )
        if wait:
            wait_until(
                lambda: (
                    self.log().count("invoice-mailer starting") > starts
                    or self.process.poll() is not None
                ),
                15,
            )
            assert self.process.poll() is None, self.log()[-3000:]
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed by the service itself."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM and the exit status; SIGKILL if it does not stop in time (then None)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hold(seconds: float, invariant: Callable[[], object]) -> None:
    """Let a condition (an outage, a full disk) last `seconds`, checking `invariant()` all along.

    The scenario's own clock, not a synchronisation: effects are awaited with wait_until.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert invariant(), f"{invariant} stopped holding"
        time.sleep(0.1)


def query(state_dir: Path, sql: str, *params) -> list[dict]:
    """Rows of the ledger, read-only (safe while the service runs or right after a SIGKILL)."""
    if not (state_dir / "ledger.db").exists():
        return []
    with Ledger(state_dir, readonly=True) as ledger:
        return [dict(row) for row in ledger.query(sql, *params)]


def state_files(state_dir: Path) -> Iterator[str]:
    """Every file under the state folders, relative to state_dir."""
    for folder in STATE_FOLDERS:
        for root, _dirs, files in os.walk(state_dir / folder):
            for name in files:
                yield os.path.relpath(os.path.join(root, name), state_dir)


def consistency_problems(state_dir: Path) -> list[str]:
    """Where ledger and disk disagree: a row without its file, a file no row names, an
    unfinished move. Empty when they agree."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for row in query(state_dir, "SELECT id, name, location, moving_to, state FROM documents"):
        owner = f"document {row['id']} ({row['name']!r}, {row['state']})"
        owners[row["location"]] = owner
        if not (state_dir / row["location"]).is_file():
            problems.append(f"{owner}: its file {row['location']} is missing")
        if row["moving_to"]:
            problems.append(f"{owner}: a move to {row['moving_to']} was never finished")
        if row["location"].startswith("failed/"):
            reason = state_dir / (row["location"] + ".reason.txt")
            if not reason.is_file():
                problems.append(f"{owner}: no reason file beside it in failed/")
            owners[row["location"] + ".reason.txt"] = owner
    for row in query(state_dir, "SELECT id, eml, state FROM deliveries WHERE eml IS NOT NULL"):
        owner = f"delivery {row['id']} ({row['state']})"
        owners[row["eml"]] = owner
        if not (state_dir / row["eml"]).is_file():
            problems.append(f"{owner}: its message {row['eml']} is missing")
    problems += [f"orphan file {path}" for path in state_files(state_dir) if path not in owners]
    return problems


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Regular files under `root` whose bytes contain `needle` (symlinks are not followed)."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            with contextlib.suppress(OSError), open(path, "rb") as stream:
                if needle in stream.read():
                    found.append(path)
    return found


def peak_memory_kb(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def wire_headers(data: bytes) -> list[tuple[str, str]]:
    """The top-level header fields exactly as they crossed the wire, unfolded, in order."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    fields: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + line)
        else:
            name, _, value = line.partition(":")
            fields.append((name, value))
    return [(name, value.strip()) for name, value in fields]
