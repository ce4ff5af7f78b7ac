"""A bench for the delivery stage: a real config file, the real ledger, real spool files, the
real Dispatcher and Archive talking to a real aiosmtpd server, with an injected clock and a
zero tenacity wait (the policy comes from quick_retry_policy, as in the service).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

from tenacity import wait_none

from invoice_mailer import storage
from invoice_mailer.archive.archiver import Archive
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.delivery.dispatcher import Dispatcher
from invoice_mailer.delivery.retrypolicy import quick_retry_policy
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.demo.tlscerts import TestCerts
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.routing.planning import plan_delivery
from invoice_mailer.service.alerts import Alerts
from tests.support.configs import write_config
from tests.support.smtpserver import PASSWORD, USER, SmtpTestServer

CUSTOMER = "mario@rossi.example"
COPY = "archivio@example.it"


class Clock:
    """Time that moves only when a test says so (starts at the real now: sensible dates)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bench_config(
    tmp_path: Path, server: SmtpTestServer, certs: TestCerts | None = None, **sections
) -> Config:
    """A config file for `server` (TLS trusting the test CA, AUTH when it has users)."""
    smtp = {"host": "localhost", "port": server.port, "security": server.security}
    smtp |= {"timeout": "5s", "data_timeout": "5s"}
    if server.security != "none":
        smtp |= {"ca_file": str(certs.ca), "username": USER, "password": PASSWORD}
    smtp |= sections.pop("smtp", {})
    retry = {"attempts_now": 3, "backoff_min": "5m", "backoff_max": "1h"} | sections.pop(
        "retry", {}
    )
    sections.setdefault("signature", "--\nRossi S.r.l. - Amministrazione")
    return load_config(write_config(tmp_path, smtp=smtp, retry=retry, **sections))


class Bench:
    """Documents in, deliveries planned, `run()` = one worker pass (dispatcher, then archive)."""

    def __init__(self, config: Config, clock: Clock | None = None):
        self.config = config
        self.clock = clock or Clock()
        self.stop = threading.Event()
        storage.prepare(config.state_dir)
        self.ledger = Ledger(config.state_dir)
        self.archive = Archive(config, self.ledger, clock=self.clock)
        self.alerts = Alerts(config, self.ledger, clock=self.clock)
        self.transport = self.new_transport(config)
        self.dispatcher = Dispatcher(
            config,
            self.ledger,
            self.transport,
            self.stop,
            retrying=quick_retry_policy(config.retry, self.stop, wait=wait_none()),
            clock=self.clock,
        )

    @staticmethod
    def new_transport(config: Config) -> SmtpTransport:
        return SmtpTransport(config.smtp, config.smtp.password, local_hostname="bench.test")

    def add_invoice(
        self,
        name: str = "Fattura_123_2026_C042.pdf",
        data: bytes = b"%PDF-1.4\n%fattura\n",
        to: tuple[str, ...] = (CUSTOMER,),
        **facts: str,
    ) -> int:
        """A routed document in the spool and its planned delivery; returns the document id."""
        spooled = self.config.state_dir / storage.SPOOL / storage.spool_name(name)
        spooled.write_bytes(data)
        info = {"doc": "Fattura", "number": "123", "date": "05/03/2026", "year": "2026"}
        info |= {"customer_code": "C042", "customer_name": "Mario Rossi S.p.A."} | facts
        now = self.clock()
        with self.ledger.transaction() as db:
            document = db.execute(
                "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, "
                "taken_at, state, info, number, customer_code, customer_name, updated_at) "
                "VALUES (?, ?, ?, 'pdf', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name, str(self.config.watch.folder / name),
                    storage.relative(self.config.state_dir, spooled), len(data),
                    hashlib.sha256(data).hexdigest(), now, DocumentState.ROUTED, json.dumps(info),
                    info["number"], info["customer_code"], info["customer_name"], now,
                ),
            ).lastrowid  # fmt: skip
            plan_delivery(db, self.config, "customer", to, [document], now)
        return document

    def run(self) -> float | None:
        wait = self.dispatcher.step()
        self.archive.step()
        return wait

    def deliveries(self) -> list[dict]:
        return [dict(r) for r in self.ledger.query("SELECT * FROM deliveries ORDER BY id")]

    def delivery(self) -> dict:
        (row,) = self.deliveries()
        return row

    def notices(self) -> list[str]:
        return [r["text"] for r in self.ledger.query("SELECT text FROM notices ORDER BY id")]

    def sent_files(self) -> list[Path]:
        return sorted(p for p in (self.config.state_dir / storage.SENT).rglob("*") if p.is_file())

    def failed_files(self) -> list[Path]:
        return sorted((self.config.state_dir / storage.FAILED).iterdir())

    def close(self) -> None:
        self.dispatcher.transport.close()
        self.ledger.close()
