"""The real `invoice-mailer run` as a subprocess, with a real SMTP server and real folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from invoice_mailer.ledger.database import Ledger
from tests.support.configs import base_config
from tests.support.helpers import wait_until


def write_address_book(path: Path, rows: list[tuple[str, ...]]) -> Path:
    """A CSV address book as the invoicing program exports it (';', header row)."""
    header = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale\n"
    path.write_text(header + "".join(";".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def service_config(tmp_path: Path, server, **sections) -> Path:
    """A config that sends to `server` (a tests.support.smtpserver.SmtpTestServer) in plain SMTP."""
    smtp = {"host": server.host, "port": server.port, "security": "none", "timeout": "10s"}
    smtp.update(sections.pop("smtp", {}))
    retry = {"attempts_now": 2, "backoff_min": "1s", "backoff_max": "2s"}
    retry.update(sections.pop("retry", {}))
    config = base_config(tmp_path, smtp=smtp, retry=retry, **sections)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class ServiceProcess:
    """`python -m invoice_mailer -c CONFIG run` with its log in a file; stopped with SIGTERM."""

    def __init__(self, config: Path, env: dict[str, str] | None = None):
        self.config = config
        self.state_dir = Path(yaml.safe_load(config.read_text())["state_dir"])
        self.log_path = config.parent / f"service-{os.getpid()}-{id(self)}.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "invoice_mailer", "-c", str(self.config), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        wait_until(
            lambda: "invoice-mailer starting" in self.log() or self.process.poll() is not None, 15
        )
        assert self.process.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self._log.close()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, sql: str, *params):
        with Ledger(self.state_dir, readonly=True) as ledger:
            return [dict(row) for row in ledger.query(sql, *params)]
