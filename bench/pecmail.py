"""The receipts a PEC provider puts in the sender's mailbox, for the receipts benchmark: for each
message, the accettazione and the avvenuta consegna, written as Aruba writes them (the shape of
tests/support/receiptmail.py, which the benchmarks may not import): S/MIME multipart/signed
with a real CMS signature, a text and an HTML alternative in iso-8859-1 quoted-printable,
daticert.xml in base64 and, in the delivery receipt, the whole original message (postacert.eml:
a ricevuta *completa*, what a provider gives unless the sender asks for less).
"""

from __future__ import annotations

import base64
import sys
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from invoice_mailer.demo.pecreceipts import sign_detached
from invoice_mailer.demo.samples import make_pdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.receiptmail import crlf, provider_identity, text_part

PROVIDER = "ARUBA PEC S.p.A."
DOMAIN = "pec.aruba.it"
SUBJECTS = {"accettazione": "ACCETTAZIONE", "avvenuta-consegna": "CONSEGNA"}
DONE = {
    "accettazione": "è stato accettato dal sistema ed inoltrato",
    "avvenuta-consegna": "è stato consegnato nella casella di destinazione",
}


class ReceiptMaker:
    """Receipts for messages `sender` sent, each delivery receipt carrying the original with a
    PDF of `pdf_size` bytes (one PDF for all: only the count and the size matter here)."""

    def __init__(self, sender: str, pdf_size: int) -> None:
        self.sender = sender
        pdf = make_pdf(size=pdf_size, text="Fattura")
        self._pdf = base64.encodebytes(pdf).decode()
        self._serial = 0

    def original(self, message_id: str, to: str, subject: str) -> bytes:
        """The message as the service sent it: a text and the PDF."""
        boundary = f"=============={uuid.uuid4().int % 10**19:019d}=="
        return crlf(
            f"From: Bench S.r.l. <{self.sender}>\nTo: {to}\nSubject: {subject}\n"
            f"Date: {format_datetime(datetime.now(UTC).astimezone())}\n"
            f"Message-ID: {message_id}\nMIME-Version: 1.0\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
            f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 7bit\n\nGentile cliente,\nin allegato la fattura.\n"
            f"--{boundary}\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
            f'Content-Disposition: attachment; filename="Fattura.pdf"\n\n{self._pdf}'
            f"--{boundary}--\n"
        )

    def receipt(self, kind: str, message_id: str, to: str, subject: str) -> bytes:
        """The accettazione or the avvenuta consegna (completa) of one message to `to`."""
        when = datetime.now(UTC).astimezone()
        self._serial += 1
        provider_id = f"opec21019.{when:%Y%m%d%H%M%S}.{self._serial:06d}.612.1.53@{DOMAIN}"
        delivered = kind == "avvenuta-consegna"
        extra = (
            f'    <ricevuta tipo="completa" />\n    <consegna>{to}</consegna>\n'
            if delivered
            else ""
        )
        certificate = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<postacert tipo="{kind}" errore="nessuno">\n  <intestazione>\n'
            f"    <mittente>{self.sender}</mittente>\n"
            f'    <destinatari tipo="certificato">{to}</destinatari>\n'
            f"    <risposte>{self.sender}</risposte>\n    <oggetto>{escape(subject)}</oggetto>\n"
            f"  </intestazione>\n  <dati>\n    <gestore-emittente>{PROVIDER}</gestore-emittente>\n"
            f'    <data zona="{when:%z}">\n      <giorno>{when:%d/%m/%Y}</giorno>\n'
            f"      <ora>{when:%H:%M:%S}</ora>\n    </data>\n"
            f"    <identificativo>{provider_id}</identificativo>\n"
            f"    <msgid>{escape(message_id)}</msgid>\n{extra}  </dati>\n</postacert>\n"
        ).encode()
        text = (
            f"Ricevuta di {kind}\nIl giorno {when:%d/%m/%Y} alle ore {when:%H:%M:%S} "
            f'({when:%z}) il messaggio "{subject}" proveniente da "{self.sender}" '
            f'ed indirizzato a "{to}"\n{DONE[kind]}.\nIdentificativo messaggio: {provider_id}\n'
        )
        html = f"<html><body><p>{escape(text)}</p></body></html>"
        alternative, mixed, outer = (f"----={uuid.uuid4().hex[:16]}" for _ in range(3))
        parts = [
            f'Content-Type: multipart/alternative; boundary="{alternative}"\n\n'
            f"--{alternative}\n{text_part(text)}\n--{alternative}\n{text_part(html, 'html')}\n"
            f"--{alternative}--\n",
            'Content-Type: application/xml; name="daticert.xml"\n'
            "Content-Transfer-Encoding: base64\n"
            'Content-Disposition: inline; filename="daticert.xml"\n\n'
            + base64.encodebytes(certificate).decode(),
        ]
        if delivered:
            original = self.original(message_id, to, subject).decode().replace("\r\n", "\n")
            parts.append(
                'Content-Type: message/rfc822; name="postacert.eml"\n'
                f'Content-Disposition: inline; filename="postacert.eml"\n\n{original}'
            )
        inner = crlf(
            f'Content-Type: multipart/mixed; boundary="{mixed}"\n\n'
            + "".join(f"--{mixed}\n{part}\n" for part in parts)
            + f"--{mixed}--\n"
        )
        head = (
            f"Return-Path: <posta-certificata@{DOMAIN}>\n"
            f"Received: from smtp.{DOMAIN} by mx.{DOMAIN} with ESMTPS; {format_datetime(when)}\n"
            f"X-Ricevuta: {kind}\nX-Riferimento-Message-ID: {message_id}\n"
            + ("X-TipoRicevuta: completa\n" if delivered else "")
            + f"Date: {format_datetime(when)}\nSubject: {SUBJECTS[kind]}: {subject}\n"
            f"From: posta-certificata@{DOMAIN}\nTo: {self.sender}\n"
            f"Message-ID: <{provider_id}>\nMIME-Version: 1.0\n"
            'Content-Type: multipart/signed; protocol="application/x-pkcs7-signature"; '
            f'micalg="sha-256"; boundary="{outer}"\n\nThis is an S/MIME signed message\n\n'
            f"--{outer}\n"
        )
        signature = base64.encodebytes(sign_detached(inner, *provider_identity())).decode()
        return (
            crlf(head)
            + inner
            + crlf(
                f'\n--{outer}\nContent-Type: application/x-pkcs7-signature; name="smime.p7s"\n'
                "Content-Transfer-Encoding: base64\n"
                f'Content-Disposition: attachment; filename="smime.p7s"\n\n{signature}\n'
                f"--{outer}--\n"
            )
        )
