"""`invoice-mailer demo`: the whole thing on one machine, in under a minute.

In a new temporary folder (removed at the end unless `keep`, or when something failed and its
log must be read): a key, an encrypted
password, a config, an address book of invented customers and an export folder; a local mail
server with STARTTLS and AUTH (mailserver.py) that answers each message as a PEC provider does,
with an accettazione and an avvenuta consegna per recipient (pecreceipts.py) in the sender's
mailbox (imapserver.py: IMAP over TLS); the real service as a subprocess. Sample invoices are
written into the export folder the way the invoicing program writes them, and the demo waits
until every one is delivered, the accountant's bundle included, and its receipts are read.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from invoice_mailer.config import credentials
from invoice_mailer.config.load import load_config
from invoice_mailer.demo import samples
from invoice_mailer.demo.imapserver import DemoImapServer
from invoice_mailer.demo.mailserver import DemoSmtpServer, make_certificates
from invoice_mailer.demo.pecreceipts import receipts_for
from invoice_mailer.demo.table import DemoRow, table_rows
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.ledger import deliveries, delivery_recipients, documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Proof

TIMEOUT = 45.0
# Variables of a real systemd service or shell that must not leak into the demo's service.
_FOREIGN_ENV = (
    "CREDENTIALS_DIRECTORY",
    "JOURNAL_STREAM",
    "INVOICE_MAILER_CONFIG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)


class DemoError(InvoiceMailerError):
    """The demo could not run to the end; says where the service's log is."""


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    rows: list[DemoRow]
    messages: int
    seconds: float
    undelivered: list[str]

    @property
    def delivered(self) -> bool:
        return not self.undelivered


class Demo:
    """Prepares, starts, runs and stops the demo; a context manager that always cleans up."""

    def __init__(
        self,
        say: Callable[[str], None] = lambda _text: None,
        timeout: float = TIMEOUT,
        keep: bool = False,
    ):
        self.keep = keep  # leave the folder (and its messages) behind; set on any failure
        self.folder = Path(tempfile.mkdtemp(prefix="invoice-mailer-demo-"))
        self.export = self.folder / "export"
        self.state = self.folder / "state"
        self.received = self.folder / "received"
        self.config = self.folder / "config.yaml"
        self.log = self.folder / "service.log"
        self.say = say
        self.timeout = timeout
        self.smtp: DemoSmtpServer | None = None
        self.imap: DemoImapServer | None = None
        self.service: subprocess.Popen | None = None

    def __enter__(self) -> Demo:
        # SIGTERM ends the demo like Ctrl-C, so the service it started never outlives it.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start()
        except BaseException:
            self.__exit__(BaseException)
            raise
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        status = self.stop()
        signal.signal(signal.SIGTERM, self._previous_sigterm)
        failed = status != 0 or exc_type not in (None, KeyboardInterrupt)
        if not (self.keep or failed):
            shutil.rmtree(self.folder, ignore_errors=True)
        if exc_type is None and status != 0:
            raise DemoError(f"the service ended with status {status}; its log: {self.log}")

    # -- set up -----------------------------------------------------------------------------

    def start(self) -> None:
        self.say(f"Demo folder: {self.folder}")
        self.export.mkdir()
        ca, cert, key = make_certificates(self.folder / "tls")
        key_file = self.folder / "secret.key"
        credentials.generate_key(key_file)
        password = secrets.token_urlsafe(16)
        token = credentials.encrypt_password(password, key_file)
        book = self.folder / "clienti.csv"
        book.write_text(samples.demo_address_book(), encoding="utf-8")
        self.imap = imap = DemoImapServer((cert, key), samples.SENDER, password).start()

        def answer(sender: str, recipients: list[str], data: bytes) -> None:
            for receipt in receipts_for(data, sender, recipients):
                imap.deliver(receipt)

        self.smtp = DemoSmtpServer(
            self.received, (cert, key), samples.SENDER, password, on_message=answer
        ).start()
        self.say(
            f"Mail server: {self.smtp.host}:{self.smtp.port}, STARTTLS and AUTH required; "
            f"it stores what it receives in {self.received}"
        )
        self.say(
            f"Mailbox: {imap.host}:{imap.port}, IMAP over TLS; like a PEC provider, the mail "
            "server leaves an accettazione and an avvenuta consegna there for each message"
        )
        self.config.write_text(
            samples.demo_config(self, self.smtp.port, token, key_file, ca, book, imap.port),
            encoding="utf-8",
        )
        service = self._start_service()
        self.say(f"Service: running (pid {service.pid}), log in {self.log}")

    def _start_service(self) -> subprocess.Popen:
        """`invoice-mailer run` as systemd would start it, READY=1 telling it has started.
        self.service is set at once, so that stop() ends a service that never got ready."""
        name = f"invoice-mailer-demo-{os.getpid()}-{secrets.token_hex(4)}"
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env["NOTIFY_SOCKET"] = "@" + name
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind("\0" + name)
            notify.settimeout(0.2)
            with open(self.log, "ab") as log:
                self.service = service = subprocess.Popen(  # noqa: S603 (this interpreter, fixed args)
                    [sys.executable, "-m", "invoice_mailer", "-c", str(self.config), "run"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if b"READY=1" in notify.recv(4096):
                        return service  # closing the socket: later notifications are dropped
                except TimeoutError:
                    pass
                if service.poll() is not None:
                    raise DemoError(
                        f"the service did not start (status {service.returncode}):\n"
                        + _tail(self.log)
                    )
        raise DemoError(f"the service did not start within 20 s; its log: {self.log}")

    # -- run --------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        """Write the samples as the invoicing program does, wait for every delivery."""
        smtp, service = self._running()
        started = time.monotonic()
        documents = samples.demo_documents(
            datetime.datetime.now(tz=datetime.UTC).astimezone().date()
        )
        for name, data in documents:
            temporary = self.export / f"{name}.tmp"  # ignored by watch.ignore until renamed
            temporary.write_bytes(data)
            temporary.rename(self.export / name)
        self.say(f"Wrote {len(documents)} documents into {self.export}; waiting for delivery…")
        names = [name for name, _data in documents]
        deadline = time.monotonic() + self.timeout
        reported = receipts = -1
        while not self._finished(names):
            if service.poll() is not None:
                raise DemoError(f"the service stopped unexpectedly:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise DemoError(
                    f"not everything was delivered within {self.timeout:g} s; "
                    f"see the service log {self.log}"
                )
            if smtp.received != reported:
                reported = smtp.received
                if reported:
                    self.say(f"  {reported} message(s) received by the mail server")
            if self.imap is not None and self.imap.count != receipts:
                receipts = self.imap.count
                self.say(f"  {receipts} receipt(s) in the mailbox")
            time.sleep(0.2)  # polling the ledger a real user would look at, not synchronising
        return self._result(names, time.monotonic() - started)

    def _finished(self, names: list[str]) -> bool:
        """Every sample filed (done or failed) and nothing left to send: the bundle included,
        since a document is filed only after its session's bundle went; and the receipts of
        every message read (no recipient is still only `sent` or `accepted`)."""
        if not (self.state / "ledger.db").exists():
            return False
        with Ledger(self.state, readonly=True) as ledger:
            states = documents.states_by_name(ledger.db)
            pending = deliveries.count_pending(ledger.db)
            proofs = delivery_recipients.count_by_proof(ledger.db)
        unproven = proofs.get(Proof.SENT, 0) + proofs.get(Proof.ACCEPTED, 0)
        return (
            pending == 0
            and unproven == 0
            and all(
                states.get(name) in (DocumentState.DONE, DocumentState.FAILED) for name in names
            )
        )

    def _result(self, names: list[str], seconds: float) -> DemoResult:
        rows: list[DemoRow] = []
        undelivered: list[str] = []
        templates = load_config(self.config).templates  # which languages have their words
        with Ledger(self.state, readonly=True) as ledger:
            for document in documents.every(ledger.db):
                its_deliveries = deliveries.of_document(ledger.db, document["id"])
                if document["state"] != DocumentState.DONE or any(
                    v["state"] != DeliveryState.SENT for v in its_deliveries
                ):
                    undelivered.append(f"{document['name']}: {document['reason'] or 'not sent'}")
                known = delivery_recipients.of_deliveries(
                    ledger.db, [v["id"] for v in its_deliveries]
                )
                proofs = {(r["delivery_id"], r["address"]): r["proof"] for v in known.values()
                          for r in v}  # fmt: skip
                rows += table_rows(document, its_deliveries, templates, proofs)
        missing = [name for name in names if name not in {row.document for row in rows}]
        smtp, _service = self._running()
        return DemoResult(self.folder, rows, smtp.received, seconds, undelivered + missing)

    def wait_until_interrupted(self) -> None:
        """--keep: serve until Ctrl-C or SIGTERM; fail if the service dies meanwhile."""
        _smtp, service = self._running()
        stop = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *_: stop.set())
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.wait(0.5):
                if service.poll() is not None:
                    raise DemoError(f"the service stopped unexpectedly:\n{_tail(self.log)}")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _running(self) -> tuple[DemoSmtpServer, subprocess.Popen]:
        """The mail server and the service, between start() and stop()."""
        if self.smtp is None or self.service is None:
            raise RuntimeError("the demo is not running: start() comes first, stop() last")
        return self.smtp, self.service

    # -- tear down ----------------------------------------------------------------------------

    def stop(self) -> int:
        """SIGTERM to the service (it finishes the message in flight), then the mail server."""
        status = 0
        service, self.service = self.service, None
        if service is not None:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
            try:
                status = service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.kill()
                status = service.wait()
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.stop()
        imap, self.imap = self.imap, None
        if imap is not None:
            imap.stop()
        return status


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
