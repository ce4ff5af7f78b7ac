"""The demo's PEC provider: for each message the demo mail server takes, the receipts a PEC
provider puts in the sender's mailbox, shaped as the rules have them (DM 2 November 2005): an
accettazione for the message, an avvenuta consegna per recipient, each S/MIME signed with
daticert.xml. A small cousin of tests/support/receiptmail.py, which makes every kind and
provider; here the installed `invoice-mailer demo` needs it, so it lives in the package.
"""

from __future__ import annotations

import base64
import email
import uuid
from datetime import UTC, datetime
from email.policy import compat32
from email.utils import format_datetime
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from invoice_mailer.demo.tlscerts import signing_identity

PROVIDER = "Gestore PEC dimostrativo"
DOMAIN = "pec.demo.example"


def receipts_for(data: bytes, sender: str, recipients: list[str]) -> list[bytes]:
    """The accettazione and one avvenuta consegna per recipient of a message we took."""
    original = email.message_from_bytes(data, policy=compat32)
    message_id = str(original.get("Message-ID") or "").strip()
    subject = str(original.get("Subject") or "")
    if not message_id:
        return []
    when = datetime.now(UTC).astimezone()
    made = [_receipt("accettazione", message_id, sender, recipients, None, subject, when)]
    made += [
        _receipt("avvenuta-consegna", message_id, sender, recipients, rcpt, subject, when)
        for rcpt in recipients
    ]
    return made


def _receipt(
    kind: str,
    message_id: str,
    sender: str,
    recipients: list[str],
    delivered_to: str | None,
    subject: str,
    when: datetime,
) -> bytes:
    provider_id = f"opec-demo.{when:%Y%m%d%H%M%S}.{uuid.uuid4().hex[:12]}@{DOMAIN}"
    addressees = "".join(
        f'<destinatari tipo="certificato">{escape(a)}</destinatari>' for a in recipients
    )
    extra = ""
    if delivered_to:
        extra = f'<ricevuta tipo="sintetica" /><consegna>{escape(delivered_to)}</consegna>'
    certificate = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<postacert tipo="{kind}" errore="nessuno"><intestazione>'
        f"<mittente>{escape(sender)}</mittente>{addressees}<risposte>{escape(sender)}</risposte>"
        f"<oggetto>{escape(subject)}</oggetto></intestazione><dati>"
        f"<gestore-emittente>{PROVIDER}</gestore-emittente>"
        f'<data zona="{when:%z}"><giorno>{when:%d/%m/%Y}</giorno><ora>{when:%H:%M:%S}</ora></data>'
        f"<identificativo>{provider_id}</identificativo><msgid>{escape(message_id)}</msgid>"
        f"{extra}</dati></postacert>\n"
    ).encode()
    done = "consegnato nella casella" if delivered_to else "accettato dal sistema"
    text = f"Il messaggio {subject!r} da {sender} e' stato {done}.\r\n"
    mixed = f"mixed-{uuid.uuid4().hex}"
    inner = (
        f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
        f"--{mixed}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
        f'--{mixed}\r\nContent-Type: application/xml; name="daticert.xml"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: inline; filename="daticert.xml"\r\n\r\n'
        f"{base64.encodebytes(certificate).decode().replace(chr(10), chr(13) + chr(10))}"
        f"--{mixed}--\r\n"
    ).encode()
    outer = f"signed-{uuid.uuid4().hex}"
    signature = base64.encodebytes(_sign(inner)).decode().replace("\n", "\r\n")
    title = "CONSEGNA" if delivered_to else "ACCETTAZIONE"
    headers = {
        "X-Ricevuta": kind,
        "X-Riferimento-Message-ID": message_id,
        "X-TipoRicevuta": "sintetica" if delivered_to else None,
        "Date": format_datetime(when),
        "Subject": f"{title}: {subject}",
        "From": f"posta-certificata@{DOMAIN}",
        "To": sender,
        "Message-ID": f"<{provider_id}>",
        "MIME-Version": "1.0",
        "Content-Type": f'multipart/signed; protocol="application/pkcs7-signature"; '
        f'micalg="sha-256"; boundary="{outer}"',
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items() if value)
    return (
        (head + f"\r\n--{outer}\r\n").encode()
        + inner
        + (
            f"\r\n--{outer}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=smime.p7s\r\n\r\n{signature}"
            f"--{outer}--\r\n"
        ).encode()
    )


def _identity() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The demo provider's signing certificate, made once per run (milliseconds)."""
    return signing_identity(f"posta-certificata@{DOMAIN}")


def _sign(content: bytes) -> bytes:
    return sign_detached(content, *_identity())


def sign_detached(
    content: bytes, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> bytes:
    """A detached CMS signature over the exact bytes of the signed part, as S/MIME has it."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
