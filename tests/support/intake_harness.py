"""The intake as the service wires it, for tests: a real Watcher feeding a real Intake and Ledger.

`IntakeRunner` runs the intake loop and the watcher's supervision on real threads (as
service.py does) and stops them; `documents()` reads the ledger through its own connection.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.intake.events import Intake
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.watch.watcher import Watcher
from tests.support.configs import write_config


def pdf_bytes(label: str, size: int = 0) -> bytes:
    """A small PDF that passes the intake's check; `label` makes its content (and hash) unique."""
    body = f"%PDF-1.4\n% {label}\n1 0 obj << /Type /Catalog >> endobj\n".encode()
    padding = max(0, size - len(body) - 20)
    return body + (b"%" + b"x" * 78 + b"\n") * (padding // 80) + b"\ntrailer\n%%EOF\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def intake_config(tmp_path: Path, smtp: dict | None = None, **watch: object) -> Config:
    """A real config file (settle 0.2 s, events unless told) read by the real loader."""
    options = {"rescan": "1h", **watch}
    return load_config(write_config(tmp_path, watch=options, smtp=smtp or {}))


def spool_files(state_dir: Path) -> set[str]:
    return {f"spool/{entry.name}" for entry in os.scandir(state_dir / "spool")}


class IntakeRunner:
    """Watcher → Intake → Ledger on threads, like service.run(); `stop()` ends everything."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.offers: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> IntakeRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> IntakeRunner:
        self.ledger = Ledger(self.config.state_dir)
        self.intake = Intake(self.config, self.ledger)
        self.intake.recover()
        self.watcher = Watcher(self.config.watch, self._offer)
        self.intake.tracker.closes = self.watcher.reports_close
        self.watcher.start()
        self.watcher.scan()
        self._threads = [
            threading.Thread(target=self._intake_loop, name="intake"),
            threading.Thread(target=self._supervise, name="supervisor"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _offer(self, path: str, event: str) -> None:
        self.offers.append((os.path.basename(path), event))  # list.append is atomic
        self.intake.offer(path, event)

    def _intake_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.intake.step(max_wait=0.05)
            except BaseException as exc:  # surfaced by stop(): the test fails with it
                self.errors.append(exc)
                return

    def _supervise(self) -> None:
        while not self._stop.wait(0.05):
            self.watcher.supervise(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.watcher.stop()
        self.ledger.close()
        if self.errors:
            raise self.errors[0]

    def scans_of(self, name: str) -> int:
        return sum(1 for offered, event in list(self.offers) if (offered, event) == (name, "scan"))

    def documents(self, name: str | None = None) -> list[dict]:
        with Ledger(self.config.state_dir, readonly=True) as ledger:
            rows = ledger.query("SELECT * FROM documents ORDER BY id")
        return [dict(row) for row in rows if name is None or row["name"] == name]
