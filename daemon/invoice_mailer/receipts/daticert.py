"""daticert.xml: the certification data a PEC provider attaches to every receipt and envelope
(DM 2 November 2005, technical rules §7.4; RFC 6109). Parsed with defusedxml only; a DOCTYPE
without entities is tolerated, since some providers name the rules' DTD in it.

    <postacert tipo="avvenuta-consegna" errore="nessuno">
      <intestazione> mittente, destinatari tipo="certificato|esterno"+, risposte, oggetto?
      <dati> gestore-emittente, data zona="+0100" (giorno dd/mm/yyyy, ora hh:mm:ss),
             identificativo, msgid? (our Message-ID, its <> written &lt; &gt;),
             ricevuta tipo="completa|breve|sintetica"?, consegna?, ricezione*, errore-esteso?
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.etree.ElementTree import Element

from invoice_mailer.receipts.mail import Unreadable, address, message_id
from invoice_mailer.receipts.xmltree import child, children, local_name, parse, text

MAX_SIZE = 1024 * 1024  # a daticert names every recipient: a few hundred fit in a few KB
_ZONE = re.compile(r"([+-])(\d{2}):?(\d{2})")
_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


@dataclass(frozen=True)
class Addressee:
    """One recipient of the original message, as the provider classed it."""

    address: str
    certified: bool  # tipo="certificato" (a PEC box); "esterno" is an ordinary mailbox


@dataclass(frozen=True)
class Daticert:
    kind: str  # postacert tipo: accettazione, avvenuta-consegna, posta-certificata, ...
    error: str  # postacert errore: nessuno, no-dest, no-dominio, virus, altro
    sender: str  # mittente
    addressees: tuple[Addressee, ...]  # destinatari
    subject: str | None  # oggetto
    provider: str  # gestore-emittente
    issued_at: datetime  # data + zona, aware
    provider_id: str  # identificativo: the provider's own id for the message
    message_id: str | None  # msgid: the original Message-ID, <> restored
    receipt_form: str | None  # ricevuta tipo: completa, breve, sintetica
    delivered_to: str | None  # consegna: the one recipient a delivery receipt is about
    error_detail: str | None  # errore-esteso


def parse_daticert(data: bytes) -> Daticert:
    """The certification data of a daticert.xml; raises Unreadable with the reason."""
    if len(data) > MAX_SIZE:
        raise Unreadable(f"daticert.xml is too large ({len(data)} bytes)")
    root = parse(data, "daticert.xml", allow_doctype=True)
    if local_name(root) != "postacert":
        raise Unreadable(f"daticert.xml has root <{local_name(root)}>, not <postacert>")
    kind = (root.get("tipo") or "").strip()
    if not kind:
        raise Unreadable("daticert.xml has no tipo")
    header = child(root, "intestazione")
    data_ = child(root, "dati")
    if header is None or data_ is None:
        raise Unreadable("daticert.xml lacks <intestazione> or <dati>")
    form = child(data_, "ricevuta")
    return Daticert(
        kind=kind,
        error=(root.get("errore") or "nessuno").strip(),
        sender=_required_address(header, "mittente"),
        addressees=tuple(
            Addressee(addr, (element.get("tipo") or "").strip() == "certificato")
            for element in children(header, "destinatari")
            if (addr := address(text(element)))
        ),
        subject=text(child(header, "oggetto")),
        provider=_required(data_, "gestore-emittente"),
        issued_at=_issued_at(child(data_, "data")),
        provider_id=_required(data_, "identificativo"),
        message_id=message_id(text(child(data_, "msgid"))),
        receipt_form=(form.get("tipo") or "completa").strip() if form is not None else None,
        delivered_to=address(text(child(data_, "consegna"))),
        error_detail=text(child(data_, "errore-esteso")),
    )


def _issued_at(element: Element | None) -> datetime:
    """The provider's time: giorno + ora in the offset `zona` gives (e.g. +0100)."""
    if element is None:
        raise Unreadable("daticert.xml has no <data>")
    zone = _ZONE.fullmatch((element.get("zona") or "").strip())
    day = _DAY.fullmatch(text(child(element, "giorno")) or "")
    time = _TIME.fullmatch(text(child(element, "ora")) or "")
    if not (zone and day and time):
        raise Unreadable("daticert.xml has a <data> that is not giorno dd/mm/yyyy, ora, zona")
    sign = -1 if zone.group(1) == "-" else 1
    offset = timedelta(hours=int(zone.group(2)), minutes=int(zone.group(3)))
    try:
        return datetime(
            int(day.group(3)),
            int(day.group(2)),
            int(day.group(1)),
            int(time.group(1)),
            int(time.group(2)),
            int(time.group(3) or 0),
            tzinfo=timezone(sign * offset),
        )
    except ValueError as exc:  # 31/02, 25:00, an offset of a day or more
        raise Unreadable(f"daticert.xml has an impossible date or time ({exc})") from None


def _required(element: Element, name: str) -> str:
    value = text(child(element, name))
    if value is None:
        raise Unreadable(f"daticert.xml has no <{name}>")
    return value


def _required_address(element: Element, name: str) -> str:
    value = address(_required(element, name))
    if value is None:
        raise Unreadable(f"daticert.xml has no address in <{name}>")
    return value
