"""The demo's mail server: aiosmtpd on 127.0.0.1 with STARTTLS and AUTH, as a real provider.

It requires STARTTLS before AUTH and MAIL, checks the demo password, and stores every message it
accepts as NNNN.eml. Its certificate is signed by a CA made on the fly; the demo config trusts
that CA through smtp.ca_file, so the service verifies the server exactly as it would a real one.
(A model: tests/smtpserver.py, which adds faults for the tests.)
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import InvoiceMailerError

HOST = "127.0.0.1"
NAMES = ("localhost", HOST)


def free_port() -> int:
    """A free port: aiosmtpd's port=0 does not work (aiosmtpd #276, #388)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server-key.pem): a one-day CA and a certificate it signs for
    localhost and 127.0.0.1. EC P-256: made in milliseconds."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "invoice-mailer demo CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])])
    alt = [x509.DNSName(NAMES[0]), x509.IPAddress(ipaddress.ip_address(HOST))]
    cert = (
        _builder(name, ca_name, key.public_key(), ca_key.public_key(), now)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server-key.pem",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def _builder(subject, issuer, public_key, issuer_public_key, now) -> x509.CertificateBuilder:
    # Key identifiers: OpenSSL's strict mode (Python 3.13's default context) requires them.
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class DemoSmtpServer:
    """A capturing STARTTLS + AUTH server in its own thread; a context manager."""

    def __init__(self, eml_dir: Path, cert: tuple[Path, Path], username: str, password: str):
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
        return number


class _Handler:
    def __init__(self, owner: DemoSmtpServer):
        self._owner = owner

    async def handle_DATA(self, server, session, envelope) -> str:
        number = self._owner._store(envelope)
        return f"250 2.0.0 Ok: queued as {number:04d}"
