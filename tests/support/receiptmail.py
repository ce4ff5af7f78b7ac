"""PEC mail shaped like what really comes back to a sender's mailbox, for the receipts tests:
receipts and envelopes as Aruba and Legalmail write them (S/MIME multipart/signed with a real
CMS signature, iso-8859-1 quoted-printable text, daticert.xml in base64, postacert.eml in a
full delivery receipt). Bounces are in bouncemail.py, SdI notices in sdimail.py. Every builder
returns the bytes an IMAP server would hand over (CRLF line ends).
"""

from __future__ import annotations

import base64
import email
import quopri
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from invoice_mailer.demo.pecreceipts import sign_detached
from invoice_mailer.demo.tlscerts import signing_identity

SENDER = "fatture@pec.studiorossi.it"
ROME = timezone(timedelta(hours=1))
WHEN = datetime(2026, 3, 12, 10, 15, 32, tzinfo=ROME)


@dataclass(frozen=True)
class Provider:
    """How one PEC provider writes its messages."""

    domain: str
    name: str  # gestore-emittente
    from_header: str
    signature_type: str
    html: bool  # a text/html alternative next to the text

    def provider_id(self) -> str:
        stamp = WHEN.strftime("%Y%m%d%H%M%S")
        return f"opec21019.{stamp}.{uuid.uuid4().int % 10**5:05d}.612.1.53@{self.domain}"


ARUBA = Provider(
    "pec.aruba.it",
    "ARUBA PEC S.p.A.",
    "posta-certificata@pec.aruba.it",
    "application/x-pkcs7-signature",
    html=True,
)
LEGALMAIL = Provider(
    "legalmail.it",
    "InfoCert S.p.A.",
    '"Posta Certificata Legalmail" <posta-certificata@legalmail.it>',
    "application/pkcs7-signature",
    html=False,
)
SDI_GATEWAY = Provider(
    "pec.fatturapa.it",
    "Sogei S.p.A.",
    "posta-certificata@pec.fatturapa.it",
    "application/pkcs7-signature",
    html=False,
)

# What the receipt's text says happened (the rules give each kind its sentence).
DONE = {
    "accettazione": "è stato accettato dal sistema ed inoltrato",
    "non-accettazione": "non è stato accettato",
    "presa-in-carico": "è stato preso in carico",
    "avvenuta-consegna": "è stato consegnato nella casella di destinazione",
    "errore-consegna": "non è stato consegnato",
    "preavviso-errore-consegna": "non risulta ancora consegnato",
    "rilevazione-virus": "contiene un virus",
}
SUBJECTS = {
    "accettazione": "ACCETTAZIONE",
    "non-accettazione": "AVVISO DI NON ACCETTAZIONE",
    "presa-in-carico": "PRESA IN CARICO",
    "avvenuta-consegna": "CONSEGNA",
    "errore-consegna": "AVVISO DI MANCATA CONSEGNA",
    "preavviso-errore-consegna": "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO",
    "rilevazione-virus": "PROBLEMA DI SICUREZZA",
    "posta-certificata": "POSTA CERTIFICATA",
}


def our_message(message_id: str, to: str, subject: str = "Fattura 201/2026") -> bytes:
    """A message as the service sends it: text and a PDF."""
    boundary = f"=={uuid.uuid4().hex}"
    pdf = base64.encodebytes(b"%PDF-1.4\n% fattura 201\n%%EOF\n").decode()
    return crlf(
        f"From: Studio Rossi <{SENDER}>\nTo: {to}\nSubject: {subject}\n"
        f"Date: {format_datetime(WHEN)}\nMessage-ID: {message_id}\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\nIn allegato la fattura.\n"
        f'--{boundary}\nContent-Type: application/pdf; name="Fattura_201.pdf"\n'
        f"Content-Transfer-Encoding: base64\n"
        f'Content-Disposition: attachment; filename="Fattura_201.pdf"\n\n{pdf}--{boundary}--\n'
    )


def daticert(
    kind: str,
    message_id: str | None,
    provider: Provider,
    addressees: dict[str, bool],
    *,
    sender: str = SENDER,
    delivered_to: str | None = None,
    form: str | None = None,
    error: str = "nessuno",
    error_detail: str | None = None,
    subject: str = "Fattura 201/2026",
    provider_id: str | None = None,
) -> bytes:
    """daticert.xml as the rules' DTD has it; `addressees` maps address → certified (PEC)."""
    recipients = "".join(
        f'    <destinatari tipo="{"certificato" if pec else "esterno"}">{a}</destinatari>\n'
        for a, pec in addressees.items()
    )
    optional = f"    <msgid>{escape(message_id)}</msgid>\n" if message_id else ""
    optional += f'    <ricevuta tipo="{form}" />\n' if form else ""
    optional += f"    <consegna>{delivered_to}</consegna>\n" if delivered_to else ""
    optional += (
        f"    <errore-esteso>{escape(error_detail)}</errore-esteso>\n" if error_detail else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<postacert tipo="{kind}" errore="{error}">\n  <intestazione>\n'
        f"    <mittente>{sender}</mittente>\n{recipients}"
        f"    <risposte>{sender}</risposte>\n    <oggetto>{escape(subject)}</oggetto>\n"
        f"  </intestazione>\n  <dati>\n    <gestore-emittente>{provider.name}</gestore-emittente>\n"
        f'    <data zona="{WHEN.strftime("%z")}">\n      <giorno>{WHEN:%d/%m/%Y}</giorno>\n'
        f"      <ora>{WHEN:%H:%M:%S}</ora>\n    </data>\n"
        f"    <identificativo>{provider_id or provider.provider_id()}</identificativo>\n"
        f"{optional}  </dati>\n</postacert>\n"
    ).encode()


def pec_receipt(
    kind: str,
    message_id: str,
    *,
    provider: Provider = ARUBA,
    addressees: dict[str, bool] | None = None,
    recipient: str | None = None,
    form: str | None = None,
    original: bytes | None = None,
    error: str = "nessuno",
    error_detail: str | None = None,
    virus: bool = False,
    header_message_id: str | None = None,
    daticert_message_id: str | None = None,
    signed: bool = True,
) -> bytes:
    """One receipt for the message `message_id`; the last three arguments forge or break it."""
    addressees = addressees or {recipient or "cliente@pec.bianchi.it": True}
    if kind == "avvenuta-consegna" and form is None:
        form = "completa"
    certificate = daticert(
        kind,
        daticert_message_id or message_id,
        provider,
        addressees,
        delivered_to=recipient,
        form=form,
        error=error,
        error_detail=error_detail,
    )
    headers = {
        "X-Ricevuta": kind,
        "X-Riferimento-Message-ID": header_message_id or message_id,
        "X-TipoRicevuta": form,
        "X-VerificaSicurezza": "errore" if virus else None,
        "To": SENDER,
    }
    text = (
        f"Ricevuta: {kind}\nIl giorno {WHEN:%d/%m/%Y} alle ore {WHEN:%H:%M:%S} "
        f'({WHEN:%z}) il messaggio "Fattura 201/2026" proveniente da "{SENDER}" '
        f'ed indirizzato a "{recipient or ", ".join(addressees)}"\n{DONE[kind]}.\n'
        f"Identificativo messaggio: {message_id}\n"
    )
    attached = original if form in ("completa", "breve") else None
    return provider_message(provider, kind, headers, text, certificate, attached, signed)


def transport_envelope(
    inner: bytes, *, provider: Provider = ARUBA, sender: str = SENDER, to: str = SENDER
) -> bytes:
    """A busta di trasporto: how a message from another PEC box reaches ours."""
    certificate = daticert("posta-certificata", None, provider, {to: True}, sender=sender)
    # The envelope names the message it carries, as receipts do (DM 2/11/2005).
    carried = email.message_from_bytes(inner).get("Message-ID")
    headers = {"X-Trasporto": "posta-certificata", "X-Riferimento-Message-ID": carried, "To": to}
    text = f'Messaggio di posta certificata\nIl messaggio è stato inviato da "{sender}".\n'
    return provider_message(
        provider, "posta-certificata", headers, text, certificate, inner, from_=sender
    )


def anomaly_envelope(inner: bytes, *, provider: Provider = ARUBA, to: str = SENDER) -> bytes:
    """A busta di anomalia: ordinary mail (a bounce, say) that reached our PEC box."""
    headers = {"X-Trasporto": "errore", "To": to}
    text = "Anomalia nel messaggio\nIl messaggio originale è incluso in allegato.\n"
    return provider_message(provider, "errore", headers, text, None, inner, subject="ANOMALIA")


def provider_message(
    provider: Provider,
    kind: str,
    headers: dict[str, str | None],
    text: str,
    certificate: bytes | None,
    original: bytes | None,
    signed: bool = True,
    from_: str | None = None,
    subject: str | None = None,
) -> bytes:
    """A message a PEC provider writes: its text, daticert.xml, postacert.eml, signed."""
    mixed, alternative, outer = (f"----={uuid.uuid4().hex[:16]}" for _ in range(3))
    body = text_part(text)
    if provider.html:
        html = text_part(f"<html><body><p>{escape(text)}</p></body></html>", "html")
        body = (
            f'Content-Type: multipart/alternative; boundary="{alternative}"\n\n'
            f"--{alternative}\n{body}\n--{alternative}\n{html}\n--{alternative}--\n"
        )
    parts = [body]
    if certificate is not None:
        encoded = base64.encodebytes(certificate).decode()
        parts.append(
            'Content-Type: application/xml; name="daticert.xml"\n'
            "Content-Transfer-Encoding: base64\n"
            f'Content-Disposition: inline; filename="daticert.xml"\n\n{encoded}'
        )
    if original is not None:
        parts.append(
            'Content-Type: message/rfc822; name="postacert.eml"\n'
            f'Content-Disposition: inline; filename="postacert.eml"\n\n'
            f"{original.decode('utf-8', 'surrogateescape').replace(chr(13), '')}"
        )
    inner = crlf(
        f'Content-Type: multipart/mixed; boundary="{mixed}"\n\n'
        + "".join(f"--{mixed}\n{part}\n" for part in parts)
        + f"--{mixed}--\n"
    )
    prefix = subject or SUBJECTS[kind]
    if from_ is not None:
        sender = f'"Per conto di: {from_}" <{provider.from_header.split("<")[-1].strip("<>")}>'
    else:
        sender = provider.from_header
    top = {
        "Return-Path": f"<posta-certificata@{provider.domain}>",
        "Received": f"from smtp.{provider.domain} (smtp.{provider.domain} [10.1.2.3]) by "
        f"mx.{provider.domain} with ESMTPS; {format_datetime(WHEN)}",
        **{name: value for name, value in headers.items() if value and name != "To"},
        "Date": format_datetime(WHEN),
        "Subject": f"{prefix}: Fattura 201/2026",
        "From": sender,
        "To": headers.get("To") or SENDER,
        "Message-ID": f"<{_identificativo(certificate) or provider.provider_id()}>",
        "MIME-Version": "1.0",
    }
    head = "".join(f"{name}: {value}\n" for name, value in top.items())
    if not signed:
        return crlf(head) + inner
    signature = base64.encodebytes(_sign(inner)).decode()
    return (
        crlf(
            head + f'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
            f'micalg="sha-256"; boundary="{outer}"\n\n'
            "This is an S/MIME signed message\n\n"
            f"--{outer}\n"
        )
        + inner
        + crlf(
            f'\n--{outer}\nContent-Type: {provider.signature_type}; name="smime.p7s"\n'
            "Content-Transfer-Encoding: base64\n"
            f'Content-Disposition: attachment; filename="smime.p7s"\n\n{signature}\n--{outer}--\n'
        )
    )


def _identificativo(certificate: bytes | None) -> str | None:
    """The provider's id for the message, which is also its Message-ID."""
    found = re.search(rb"<identificativo>([^<]+)</identificativo>", certificate or b"")
    return found.group(1).decode() if found else None


def text_part(text: str, subtype: str = "plain") -> str:
    """A quoted-printable ISO-8859-1 text part, as Italian PEC providers write them."""
    encoded = quopri.encodestring(text.encode("iso-8859-1")).decode("ascii")
    return (
        f"Content-Type: text/{subtype}; charset=iso-8859-1\n"
        f"Content-Transfer-Encoding: quoted-printable\n\n{encoded}"
    )


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "surrogateescape")


def provider_identity() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The certificate a PEC provider signs its messages with (made once per test run)."""
    return signing_identity(
        "posta-certificata@pec.aruba.it",
        organisation="ARUBA PEC S.p.A.",
        country="IT",
        email="posta-certificata@pec.aruba.it",
    )


def _sign(content: bytes) -> bytes:
    return sign_detached(content, *provider_identity())
