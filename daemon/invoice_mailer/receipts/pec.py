"""PEC receipts (ricevute): the provider's signed statement of what happened to one message we
sent, read from the bytes of one mail (DM 2 November 2005 technical rules; RFC 6109).

A receipt is recognised only when everything the provider writes agrees: the `X-Ricevuta`
header names a kind the rules define, the message is S/MIME signed, its own body (never a
message embedded in it) holds one daticert.xml of the same kind, and `X-Riferimento-Message-ID`
and daticert's `msgid` name the same message. A PEC transport envelope (`X-Trasporto`) is a
message someone sent, not a receipt, whatever it carries: a receipt forged inside one is
refused here. Whether the Message-ID is one we sent is the ledger's question, not this one's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from enum import StrEnum

from invoice_mailer.receipts import mail
from invoice_mailer.receipts.daticert import Addressee, Daticert, parse_daticert
from invoice_mailer.receipts.mail import Unreadable, Unrecognised

log = logging.getLogger(__name__)


class ReceiptKind(StrEnum):
    """The `X-Ricevuta` header and daticert `tipo` of each receipt the rules define."""

    ACCETTAZIONE = "accettazione"  # our provider took the message
    NON_ACCETTAZIONE = "non-accettazione"  # our provider refused it (form, or a virus)
    PRESA_IN_CARICO = "presa-in-carico"  # the recipient's provider took it from ours
    AVVENUTA_CONSEGNA = "avvenuta-consegna"  # in the recipient's mailbox: the legal proof
    ERRORE_CONSEGNA = "errore-consegna"  # avviso di mancata consegna: final
    PREAVVISO_ERRORE_CONSEGNA = "preavviso-errore-consegna"  # not delivered in 12 h, still trying
    RILEVAZIONE_VIRUS = "rilevazione-virus"  # the recipient's provider found a virus


class DeliveryForm(StrEnum):
    """How much of the original a delivery receipt carries (`X-TipoRicevuta`, ricevuta tipo)."""

    COMPLETA = "completa"  # the whole original message, as postacert.eml
    BREVE = "breve"  # the original with its attachments replaced by their hashes
    SINTETICA = "sintetica"  # the certification data only


@dataclass(frozen=True)
class PecReceipt:
    kind: ReceiptKind
    message_id: str  # ours: X-Riferimento-Message-ID, equal to daticert msgid
    recipient: str | None  # daticert consegna: the one recipient a delivery receipt is about
    provider_time: datetime  # daticert data + zona, aware
    provider_id: str  # daticert identificativo; SdI quotes it as PecMessageId
    provider: str  # daticert gestore-emittente
    sender: str  # daticert mittente
    addressees: tuple[Addressee, ...]  # daticert destinatari, certified or external
    error: str  # daticert errore: nessuno, no-dest, no-dominio, virus, altro
    error_detail: str | None  # daticert errore-esteso, the reason in the provider's words
    form: DeliveryForm | None  # delivery receipts only
    virus: bool  # X-VerificaSicurezza: errore (a non-accettazione or errore-consegna for a virus)
    signed_by: str | None  # the signing certificate's subject (not verified here)
    carries_original: bool  # a postacert.eml is attached (completa, breve)

    @property
    def reason(self) -> str | None:
        """The provider's reason for a refusal, in its words, for the admin."""
        if self.error_detail:
            return self.error_detail
        return None if self.error == "nessuno" else self.error


def parse_receipt(data: bytes, max_size: int = mail.DEFAULT_MAX_SIZE) -> PecReceipt | Unrecognised:
    """The receipt one mail is, or why it is none; hostile input never raises."""
    try:
        return _receipt(mail.read_message(data, max_size))
    except Unreadable as exc:
        return Unrecognised(f"not a PEC receipt: {exc}")
    except Exception as exc:  # the email package can raise almost anything on broken input
        log.debug("PEC receipt parser failed", exc_info=True)
        return Unrecognised(f"not a PEC receipt: unreadable message ({type(exc).__name__})")


def _receipt(message: Message) -> PecReceipt:
    kind = _kind(message)
    signature = mail.signature_part(message)
    if signature is None:
        raise Unreadable(f"X-Ricevuta: {kind} on a message that is not S/MIME signed")
    signed_by = mail.signer(signature)
    parts = mail.body_parts(message)
    certificate = _daticert(parts)
    if certificate.kind != kind:
        raise Unreadable(f"X-Ricevuta says {kind}, its daticert.xml says {certificate.kind}")
    ours = _message_id(message, certificate)
    form = _form(message, certificate) if kind is ReceiptKind.AVVENUTA_CONSEGNA else None
    if kind is ReceiptKind.AVVENUTA_CONSEGNA and certificate.delivered_to is None:
        raise Unreadable("a delivery receipt whose daticert.xml names no recipient (consegna)")
    return PecReceipt(
        kind=kind,
        message_id=ours,
        recipient=certificate.delivered_to,
        provider_time=certificate.issued_at,
        provider_id=certificate.provider_id,
        provider=certificate.provider,
        sender=certificate.sender,
        addressees=certificate.addressees,
        error=certificate.error,
        error_detail=certificate.error_detail,
        form=form,
        virus=(mail.header(message, "X-VerificaSicurezza") or "").lower() == "errore",
        signed_by=signed_by,
        carries_original=bool(mail.parts_named(parts, "postacert.eml")),
    )


def _kind(message: Message) -> ReceiptKind:
    values = {" ".join(str(v).split()).lower() for v in message.get_all("X-Ricevuta") or []}
    transport = mail.header(message, "X-Trasporto")
    if transport and values:
        raise Unreadable("it carries both X-Ricevuta and X-Trasporto")
    if transport:
        sender = mail.header(message, "From") or "an unknown sender"
        raise Unreadable(
            f"a PEC envelope (X-Trasporto: {transport}) from {sender}: a message someone "
            "sent, whatever it carries"
        )
    if not values:
        raise Unreadable("no X-Ricevuta header")
    if len(values) > 1:
        raise Unreadable(f"it carries {len(values)} different X-Ricevuta headers")
    value = values.pop()
    try:
        return ReceiptKind(value)
    except ValueError:
        raise Unreadable(f"X-Ricevuta {value!r} is no kind the PEC rules define") from None


def _daticert(parts: list[Message]) -> Daticert:
    found = mail.parts_named(parts, "daticert.xml")
    if not found:
        raise Unreadable("no daticert.xml in the message's own body")
    if len(found) > 1:
        raise Unreadable(f"{len(found)} daticert.xml attachments")
    return parse_daticert(mail.decoded(found[0]))


def _message_id(message: Message, certificate: Daticert) -> str:
    """Our Message-ID, where the header and the signed certification data agree on it."""
    raw = mail.header(message, "X-Riferimento-Message-ID")
    referenced = mail.message_id(raw)
    if referenced is None:
        raise Unreadable(f"no usable X-Riferimento-Message-ID ({raw!r})")
    if certificate.message_id is None:
        raise Unreadable("its daticert.xml has no msgid")
    if certificate.message_id != referenced:
        raise Unreadable(
            f"X-Riferimento-Message-ID {referenced} and daticert msgid "
            f"{certificate.message_id} name different messages"
        )
    return referenced


def _form(message: Message, certificate: Daticert) -> DeliveryForm:
    declared = (mail.header(message, "X-TipoRicevuta") or "").lower() or None
    certified = (certificate.receipt_form or "").lower() or None
    if declared and certified and declared != certified:
        raise Unreadable(f"X-TipoRicevuta says {declared}, its daticert.xml says {certified}")
    form = certified or declared or DeliveryForm.COMPLETA
    try:
        return DeliveryForm(form)
    except ValueError:
        raise Unreadable(f"receipt form {form!r} is none the rules define") from None
