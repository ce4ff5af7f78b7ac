"""The real `invoice-mailer web` as a subprocess, on a free loopback port; and a ledger filled
by the real service for it to show (the office's documents of tests/office)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.helpers import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class WebProcess:
    """`python -m invoice_mailer -c CONFIG web` with `web:` set in a copy of CONFIG."""

    def __init__(self, config: Path, **web: object):
        data = yaml.safe_load(config.read_text())
        self.port = free_port()
        data["web"] = {"listen": f"127.0.0.1:{self.port}", **web}
        if "listen" in web:
            self.port = int(str(web["listen"]).rpartition(":")[2])
        self.config = config.with_name(f"web-{self.port}.yaml")
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = config.with_name(f"web-{self.port}.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> WebProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "invoice_mailer", "-c", str(self.config), "web"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        wait_until(lambda: _accepts(self.port) or self.process.poll() is not None, 20)
        assert self.process.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self._log.close()

    def __enter__(self) -> WebProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
