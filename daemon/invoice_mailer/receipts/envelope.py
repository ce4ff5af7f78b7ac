"""PEC envelopes: how a message reaches a PEC mailbox. A *busta di trasporto*
(`X-Trasporto: posta-certificata`, subject "POSTA CERTIFICATA: …") carries a message another
PEC box sent, with the sender's provider's daticert.xml naming the certified sender; a *busta
di anomalia* (`X-Trasporto: errore`, "ANOMALIA MESSAGGIO: …") carries ordinary mail that
reached the PEC box, such as a bounce from an ordinary server. Either way the original is the
attached postacert.eml.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from invoice_mailer.receipts import mail
from invoice_mailer.receipts.daticert import parse_daticert
from invoice_mailer.receipts.mail import Unreadable


class EnvelopeKind(StrEnum):
    TRANSPORT = "posta-certificata"
    ANOMALY = "errore"


@dataclass(frozen=True)
class PecEnvelope:
    kind: EnvelopeKind
    certified_sender: str | None  # daticert mittente of a transport envelope; None otherwise
    provider_id: str | None  # daticert identificativo of a transport envelope
    inner: Message | None  # postacert.eml: the message the envelope carries


def open_envelope(message: Message) -> PecEnvelope | None:
    """The envelope a message is, None when it is none; raises Unreadable when it claims to be
    a transport envelope but its certification data cannot be read."""
    value = (mail.header(message, "X-Trasporto") or "").lower()
    if not value or mail.header(message, "X-Ricevuta"):
        return None
    try:
        kind = EnvelopeKind(value)
    except ValueError:
        raise Unreadable(f"X-Trasporto {value!r} is no envelope the PEC rules define") from None
    parts = mail.body_parts(message)
    originals = mail.parts_named(parts, "postacert.eml")
    inner = mail.embedded_message(originals[0]) if len(originals) == 1 else None
    if kind is EnvelopeKind.ANOMALY:
        return PecEnvelope(kind, None, None, inner)
    # Only the transport envelope certifies who sent it: its provider signs daticert.xml.
    certificates = mail.parts_named(parts, "daticert.xml")
    if len(certificates) != 1 or mail.signature_part(message) is None:
        raise Unreadable("a transport envelope without one signed daticert.xml")
    certificate = parse_daticert(mail.decoded(certificates[0]))
    if certificate.kind != EnvelopeKind.TRANSPORT:
        raise Unreadable(f"a transport envelope whose daticert.xml says {certificate.kind}")
    return PecEnvelope(kind, certificate.sender, certificate.provider_id, inner)
