"""Certificates made with `cryptography` for the demo's mail server and the tests: a private
CA, a server certificate it signs for localhost and 127.0.0.1, a self-signed one it does not
sign, and one for the wrong host name; and self-signed identities that sign (a PEC provider's
receipts, a signed FatturaPA). Never used by the service itself.

EC P-256 keys: generating them takes milliseconds, so every test session can make its own.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("localhost", "127.0.0.1")
WRONG_HOST = "mail.example.org"


@dataclass(frozen=True)
class TestCerts:
    """Paths of PEM files; each pair is (cert_path, key_path), ready for load_cert_chain."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    ca: Path
    ca_key: Path
    server: tuple[Path, Path]
    self_signed: tuple[Path, Path]
    wrong_host: tuple[Path, Path]


def make_ca_and_cert(tmp_dir: Path) -> tuple[Path, Path, Path]:
    """(ca_pem_path, cert_path, key_path): a CA and a certificate it signs for localhost."""
    ca, ca_key = make_ca(tmp_dir)
    cert, key = make_server_cert(tmp_dir, ca, ca_key)
    return ca, cert, key


def make_test_certs(tmp_dir: Path) -> TestCerts:
    ca, ca_key = make_ca(tmp_dir)
    return TestCerts(
        ca=ca,
        ca_key=ca_key,
        server=make_server_cert(tmp_dir, ca, ca_key),
        self_signed=make_self_signed_cert(tmp_dir),
        wrong_host=make_server_cert(tmp_dir, ca, ca_key, names=(WRONG_HOST,), stem="wrong-host"),
    )


def make_ca(tmp_dir: Path, name: str = "invoice-mailer test CA") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (
        _builder(subject, subject, key.public_key(), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _write(Path(tmp_dir), "ca", cert, key)


def make_server_cert(
    tmp_dir: Path,
    ca_cert: Path,
    ca_key: Path,
    names: tuple[str, ...] = LOCAL_NAMES,
    stem: str = "server",
) -> tuple[Path, Path]:
    """A server certificate for `names` (host names or IP addresses) signed by the CA."""
    issuer = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
    issuer_key = serialization.load_pem_private_key(Path(ca_key).read_bytes(), password=None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)  # noqa: S101 (a type narrowing, not a check: we made the key)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(names[0]), issuer.subject, key.public_key(), issuer_key.public_key())
    cert = _leaf(builder, names).sign(issuer_key, hashes.SHA256())
    return _write(Path(tmp_dir), stem, cert, key)


def make_self_signed_cert(
    tmp_dir: Path, names: tuple[str, ...] = LOCAL_NAMES, stem: str = "self-signed"
) -> tuple[Path, Path]:
    """A certificate for the right names that no CA vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(names[0]), _name(names[0]), key.public_key(), key.public_key())
    cert = _leaf(builder, names).sign(key, hashes.SHA256())
    return _write(Path(tmp_dir), stem, cert, key)


@functools.cache
def signing_identity(
    common_name: str,
    *,
    organisation: str = "",
    country: str = "",
    email: str = "",
    days: int = 30,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate and its key for signing (S/MIME, CAdES), made once per run
    for the same arguments."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [
        *([x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []),
        *([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)] if organisation else []),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
    )
    if email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
        )
    return builder.sign(key, hashes.SHA256()), key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key, issuer_public_key) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    # Key identifiers: OpenSSL's strict mode (Python 3.13's default context) requires them.
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    )


def _leaf(builder: x509.CertificateBuilder, names: tuple[str, ...]) -> x509.CertificateBuilder:
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    return (
        builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
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


def _write(folder: Path, stem: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    key_path.touch(mode=0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path
