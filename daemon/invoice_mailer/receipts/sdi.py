"""SdI notices: what the Sistema di Interscambio says about a FatturaPA file the office sent it
(schema MessaggiTypes v1.x, root in the namespace http://www.fatturapa.gov.it/sdi/messaggi/v1.0,
children unqualified). By PEC they come as an attachment named after the file and the kind
(`IT01234567890_00001_NS_001.xml`, an AT inside a zip with the invoice), in the message an SdI
box (sdiNN@pec.fatturapa.it) sent, so inside the transport envelope's postacert.eml; the XML
may be XAdES-signed inside, or a CAdES `.p7m`.

Only the transport envelope says who really sent a notice (its provider certifies the sender):
`SdiMail.from_sdi` is the check the ledger makes before believing one.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from enum import StrEnum
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa import p7m
from invoice_mailer.receipts import mail
from invoice_mailer.receipts.envelope import EnvelopeKind, open_envelope
from invoice_mailer.receipts.mail import Unreadable, Unrecognised
from invoice_mailer.receipts.xmltree import child, children, local_name, parse, text

log = logging.getLogger(__name__)

SDI_PEC_DOMAIN = "pec.fatturapa.it"
MAX_NOTICE_SIZE = 5 * 1024 * 1024  # a notice is a few KB; an NS lists at most a few hundred errors
_MAX_ZIP_MEMBERS = 20  # an AT zip holds the invoice and the notice
_NOTICE_NAME = re.compile(r"_(RC|NS|MC|NE|DT|AT)_[^/\\]*\.xml(\.p7m)?$", re.IGNORECASE)
_ITALY = "Europe/Rome"  # SdI writes Italian local time when it gives no offset


class NoticeKind(StrEnum):
    RC = "RC"  # RicevutaConsegna: delivered to the customer
    NS = "NS"  # NotificaScarto: refused; the invoice counts as never issued
    MC = "MC"  # NotificaMancataConsegna: not delivered; it waits in the customer's reserved area
    NE = "NE"  # NotificaEsito: the public-sector customer accepted (EC01) or refused (EC02)
    DT = "DT"  # NotificaDecorrenzaTermini: that customer did not answer within 15 days
    AT = "AT"  # AttestazioneTrasmissioneFattura: transmitted, delivery impossible


_ROOTS = {
    "RicevutaConsegna": NoticeKind.RC,
    "NotificaScarto": NoticeKind.NS,
    "NotificaMancataConsegna": NoticeKind.MC,
    "NotificaEsito": NoticeKind.NE,
    "NotificaDecorrenzaTermini": NoticeKind.DT,
    "AttestazioneTrasmissioneFattura": NoticeKind.AT,
}


@dataclass(frozen=True)
class SdiError:
    code: str  # e.g. 00404 (duplicate invoice)
    description: str
    suggestion: str | None


@dataclass(frozen=True)
class SdiNotice:
    kind: NoticeKind
    file_name: str  # NomeFile: the FatturaPA file the notice is about
    sdi_id: str  # IdentificativoSdI: SdI's number for that file
    notice_name: str | None  # the attachment's own name
    received_at: datetime | None  # DataOraRicezione: when SdI took the file
    delivered_at: datetime | None  # DataOraConsegna (RC)
    errors: tuple[SdiError, ...]  # ListaErrori (NS)
    outcome: str | None  # Esito (NE): EC01 accepted, EC02 refused
    description: str | None  # Descrizione (MC, DT; NE's from the customer)
    message_id: str | None  # MessageId: SdI's id of this notice
    pec_message_id: str | None  # PecMessageId: the PEC provider's id of the message we sent


@dataclass(frozen=True)
class SdiMail:
    notices: tuple[SdiNotice, ...]
    certified_sender: str | None  # the transport envelope's daticert mittente; None if none

    @property
    def from_sdi(self) -> bool:
        """The PEC provider certifies that an SdI box sent this mail."""
        sender = self.certified_sender or ""
        return sender.rpartition("@")[2] == SDI_PEC_DOMAIN


def parse_sdi_mail(data: bytes, max_size: int = mail.DEFAULT_MAX_SIZE) -> SdiMail | Unrecognised:
    """The SdI notices one mail carries, or why it carries none; hostile input never raises."""
    try:
        return _sdi_mail(mail.read_message(data, max_size))
    except Unreadable as exc:
        return Unrecognised(f"no SdI notice: {exc}")
    except Exception as exc:  # the email package can raise almost anything on broken input
        log.debug("SdI notice parser failed", exc_info=True)
        return Unrecognised(f"no SdI notice: unreadable message ({type(exc).__name__})")


def _sdi_mail(message: Message) -> SdiMail:
    if mail.header(message, "X-Ricevuta"):
        raise Unreadable("a PEC receipt")
    envelope = open_envelope(message)
    content: Message | None = message
    sender = None
    if envelope is not None:
        content = envelope.inner
        if envelope.kind is EnvelopeKind.TRANSPORT:
            sender = envelope.certified_sender
    if content is None:
        raise Unreadable("a PEC envelope without the message it carries (postacert.eml)")
    notices: list[SdiNotice] = []
    for part in mail.body_parts(content):
        name = mail.filename(part) or ""
        if name.lower().endswith(".zip"):
            notices += _zipped_notices(mail.decoded(part))
        elif _NOTICE_NAME.search(name):
            notices.append(parse_notice(mail.decoded(part), name))
    if not notices:
        raise Unreadable("no attachment named like an SdI notice (…_RC_…, _NS_, _MC_, …)")
    return SdiMail(tuple(notices), sender)


def _zipped_notices(data: bytes) -> list[SdiNotice]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if len(archive.infolist()) > _MAX_ZIP_MEMBERS:
                raise Unreadable(f"a zip with more than {_MAX_ZIP_MEMBERS} files")
            members = [m for m in archive.infolist() if _NOTICE_NAME.search(m.filename)]
            notices = []
            for member in members:
                if member.file_size > MAX_NOTICE_SIZE:  # declared size; read() checks the real one
                    raise Unreadable(f"{member.filename} in the zip is too large")
                with archive.open(member) as stream:
                    content = stream.read(MAX_NOTICE_SIZE + 1)
                notices.append(parse_notice(content, member.filename))
            return notices
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise Unreadable(f"an unreadable zip attachment ({exc})") from None


def parse_notice(data: bytes, name: str | None = None) -> SdiNotice:
    """One notice's XML (or its .p7m envelope); raises Unreadable with the reason."""
    label = name or "the notice"
    if len(data) > MAX_NOTICE_SIZE:
        raise Unreadable(f"{label} is too large ({len(data)} bytes)")
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        try:
            data = p7m.unwrap(data, MAX_NOTICE_SIZE)
        except DocumentError as exc:
            raise Unreadable(f"{label}: {exc}") from None
    root = parse(data, label)
    kind = _ROOTS.get(local_name(root))
    if kind is None:
        raise Unreadable(f"{label} has root <{local_name(root)}>, not an SdI notice")
    file_name, sdi_id = _text(root, "NomeFile"), _text(root, "IdentificativoSdI")
    if not file_name or not sdi_id:
        raise Unreadable(f"{label} lacks NomeFile or IdentificativoSdI")
    answer = child(root, "EsitoCommittente")
    return SdiNotice(
        kind=kind,
        file_name=file_name,
        sdi_id=sdi_id,
        notice_name=name,
        received_at=_when(_text(root, "DataOraRicezione")),
        delivered_at=_when(_text(root, "DataOraConsegna")),
        errors=tuple(_errors(root)),
        outcome=_text(answer, "Esito") if answer is not None else None,
        description=_text(answer if answer is not None else root, "Descrizione"),
        message_id=_text(root, "MessageId"),
        pec_message_id=_text(root, "PecMessageId"),
    )


def _errors(root: Element) -> list[SdiError]:
    errors = []
    for listing in children(root, "ListaErrori"):
        for error in children(listing, "Errore"):
            code, description = _text(error, "Codice"), _text(error, "Descrizione")
            if code or description:
                errors.append(SdiError(code or "", description or "", _text(error, "Suggerimento")))
    return errors


def _when(text: str | None) -> datetime | None:
    """An xs:dateTime; without an offset it is Italian time, as SdI writes it."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None  # a display detail: the notice stays valid without it
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(_ITALY))
        except ZoneInfoNotFoundError:
            return moment  # no time-zone database on this machine: leave it as written
    return moment


def _text(element: Element | None, name: str) -> str | None:
    return text(child(element, name))
