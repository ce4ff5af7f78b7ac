"""Signed p7m envelopes in every form signing tools write, and the official FatturaPA samples.

The XML and the PDF themselves are made by invoice_mailer.demo.samples (make_fattura_xml,
make_pdf: the demo writes them too); each quirk seen in real exports (see
tests/data/fatturapa/README.md) is one of their keyword arguments.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from invoice_mailer.demo import tlscerts

# The official AgID samples live in the repository, so a bare clone runs every test.
SAMPLES = Path(__file__).parent.parent / "data" / "fatturapa"


def sample_bytes(name: str) -> bytes:
    """One of the official samples in tests/data/fatturapa, e.g. "IT01234567890_FPR01.xml"."""
    return (SAMPLES / name).read_bytes()


def signing_identity() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate, made once per test run (signing tools use real CA ones)."""
    return tlscerts.signing_identity("Mario Rossi Firma Digitale", days=365)


P7M_FORMS = ("der", "base64", "base64x2", "pem", "cms-pem")


def make_p7m(xml_bytes: bytes, form: str = "der", *, line_breaks: bool = True) -> bytes:
    """A CAdES-like signed envelope around xml_bytes, as a signing tool would write it.

    form: "der"; "base64" (of the DER) and "base64x2" (base64 of that); "pem" (BEGIN PKCS7)
    and "cms-pem" (BEGIN CMS). line_breaks wraps base64 at 64 columns, as most tools do."""
    cert, key = signing_identity()
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(xml_bytes)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    if form == "der":
        return der
    if form in ("base64", "base64x2"):
        once = _b64(der, line_breaks)
        return once if form == "base64" else _b64(once, line_breaks)
    if form in ("pem", "cms-pem"):
        label = "PKCS7" if form == "pem" else "CMS"
        return (
            f"-----BEGIN {label}-----\n".encode()
            + _b64(der, True)
            + f"\n-----END {label}-----\n".encode()
        )
    raise ValueError(f"form must be one of {P7M_FORMS}")


def _b64(data: bytes, line_breaks: bool) -> bytes:
    text = base64.b64encode(data)
    if not line_breaks:
        return text
    return b"\r\n".join(text[i : i + 64] for i in range(0, len(text), 64))
