"""The demo's mail server: aiosmtpd on 127.0.0.1 with STARTTLS and AUTH, as a real provider.

It requires STARTTLS before AUTH and MAIL, checks the demo password, and stores every message it
accepts as NNNN.eml. Its certificate is signed by a CA made on the fly; the demo config trusts
that CA through smtp.ca_file, so the service verifies the server exactly as it would a real one.
(A model: tests/support/smtpserver.py, which adds faults for the tests.)
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoice_mailer.demo.tlscerts import make_ca_and_cert
from invoice_mailer.errors import InvoiceMailerError

HOST = "127.0.0.1"


def free_port() -> int:
    """A free port: aiosmtpd's port=0 does not work (aiosmtpd #276, #388)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server-key.pem): a CA and a certificate it signs for localhost and
    127.0.0.1, made on the fly (EC P-256: milliseconds)."""
    return make_ca_and_cert(folder)


class DemoSmtpServer:
    """A capturing STARTTLS + AUTH server in its own thread; a context manager."""

    def __init__(
        self,
        eml_dir: Path,
        cert: tuple[Path, Path],
        username: str,
        password: str,
        on_message: Callable[[str, list[str], bytes], None] | None = None,
    ):
        """`on_message(sender, recipients, data)` after each message is stored: the demo's
        PEC provider answers it with receipts."""
        self.on_message = on_message
        self.eml_dir = eml_dir
        self.host = HOST
        self.port = 0
        self._cert = cert
        self._login = (username, password)
        self._lock = threading.Lock()
        self._numbered = 0
        self._count = 0
        self._controller: Any = None

    @property
    def received(self) -> int:
        with self._lock:
            return self._count

    def start(self) -> DemoSmtpServer:
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            raise InvoiceMailerError(
                "the demo needs aiosmtpd for its mail server: pip install 'invoice-mailer[demo]'"
            ) from None
        # aiosmtpd logs every connection, and warns about its own deprecated login_data on
        # every AUTH; the demo's own lines say what matters.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self.eml_dir.mkdir(parents=True, exist_ok=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self._cert)
        self.port = free_port()
        with warnings.catch_warnings():
            # aiosmtpd warns about its login_data default even when only authenticator is used.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._controller = Controller(
                _Handler(self),
                hostname=self.host,
                port=self.port,
                server_hostname="smtp.demo.localhost",  # spares a slow getfqdn()
                tls_context=context,
                require_starttls=True,
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=True,
            )
            self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> DemoSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = (login, password) == self._login
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _store(self, envelope: Any) -> int:
        """Write the message as a mailbox would see it, with the envelope on top."""
        with self._lock:
            self._numbered += 1
            number = self._numbered
        head = f"Return-Path: <{envelope.mail_from}>\r\n"
        head += f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        target = self.eml_dir / f"{number:04d}.eml"
        partial = self.eml_dir / f".{number:04d}.eml.part"
        partial.write_bytes(head.encode("utf-8") + bytes(envelope.original_content))
        partial.replace(target)  # whoever looks at the folder never sees half a message
        with self._lock:
            self._count += 1
        if self.on_message is not None:
            data = bytes(envelope.original_content)
            self.on_message(envelope.mail_from, list(envelope.rcpt_tos), data)
        return number


class _Handler:
    def __init__(self, owner: DemoSmtpServer):
        self._owner = owner

    async def handle_DATA(self, server, session, envelope) -> str:
        number = self._owner._store(envelope)
        return f"250 2.0.0 Ok: queued as {number:04d}"
