"""SdI notices shaped like the real ones (MessaggiTypes v1.1: a `types:` prefix, a stylesheet
instruction, an XAdES signature inside), in the PEC an SdI box sends them with: its message
inside the SdI gateway's transport envelope, the notice attached as XML, as a `.p7m`, or (AT)
in a zip next to the invoice.
"""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from email.utils import format_datetime
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.support.receiptmail import (
    SDI_GATEWAY,
    SENDER,
    WHEN,
    crlf,
    provider_identity,
    transport_envelope,
)

SDI_NAMESPACE = "http://www.fatturapa.gov.it/sdi/messaggi/v1.0"
SDI_BOX = "sdi01@pec.fatturapa.it"
_SDI_ROOTS = {
    "RC": ("RicevutaConsegna", "Ricevuta di consegna"),
    "NS": ("NotificaScarto", "Notifica di scarto"),
    "MC": ("NotificaMancataConsegna", "Notifica di mancata consegna"),
    "NE": ("NotificaEsito", "Notifica di esito"),
    "DT": ("NotificaDecorrenzaTermini", "Notifica decorrenza termini"),
    "AT": ("AttestazioneTrasmissioneFattura", "Attestazione di avvenuta trasmissione"),
}


def sdi_notice(
    kind: str,
    file_name: str = "IT01234567890_00001.xml",
    sdi_id: str = "4501237",
    *,
    pec_message_id: str | None = None,
    errors: tuple[tuple[str, str], ...] = (("00404", "Fattura duplicata"),),
    outcome: str = "EC01",
) -> bytes:
    """A notice as SdI writes it: MessaggiTypes, a `types:` prefix, a stylesheet, XAdES."""
    root, _words = _SDI_ROOTS[kind]
    received = "<DataOraRicezione>2026-03-12T10:20:11.000+01:00</DataOraRicezione>"
    recipient = "<Destinatario><Codice>M5UXCR1</Codice><Descrizione>Bianchi Srl</Descrizione>"
    recipient += "</Destinatario>"
    reference = "<RiferimentoFattura><NumeroFattura>201</NumeroFattura>"
    reference += "<AnnoFattura>2026</AnnoFattura></RiferimentoFattura>"
    body = {
        "RC": f"<Hash>ab12</Hash>{received}<DataOraConsegna>2026-03-12T10:25:40.000+01:00"
        f"</DataOraConsegna>{recipient}",
        "NS": f"<Hash>ab12</Hash>{received}<ListaErrori>"
        + "".join(
            f"<Errore><Codice>{code}</Codice><Descrizione>{escape(text)}</Descrizione>"
            "<Suggerimento>Verificare il numero e la data</Suggerimento></Errore>"
            for code, text in errors
        )
        + "</ListaErrori>",
        "MC": f"<Hash>ab12</Hash>{received}<Descrizione>Casella PEC del destinatario piena"
        "</Descrizione>",
        "NE": f"{reference}<NomeFile>{file_name}</NomeFile><EsitoCommittente>"
        f"<IdentificativoSdI>{sdi_id}</IdentificativoSdI>{reference}<Esito>{outcome}</Esito>"
        "<Descrizione>Importo non dovuto</Descrizione></EsitoCommittente>",
        "DT": f"{reference}<NomeFile>{file_name}</NomeFile><Descrizione>Decorsi i termini"
        "</Descrizione>",
        "AT": f"{received}{recipient}",
    }[kind]
    name = "" if kind in ("NE", "DT") else f"<NomeFile>{file_name}</NomeFile>"
    tail = f"<PecMessageId>{pec_message_id}</PecMessageId>" if pec_message_id else ""
    tail += "<HashFileOriginale>ab12</HashFileOriginale>" if kind == "AT" else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<?xml-stylesheet type="text/xsl" href="{kind}_v1.1.xsl"?>\n'
        f'<types:{root} xmlns:types="{SDI_NAMESPACE}" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" versione="1.0">'
        f"<IdentificativoSdI>{sdi_id}</IdentificativoSdI>{name}{body}"
        f"<MessageId>{uuid.uuid4().int % 10**9}</MessageId>{tail}"
        '<ds:Signature Id="Signature1"><ds:SignedInfo /><ds:SignatureValue>c2ln'
        f"</ds:SignatureValue></ds:Signature></types:{root}>"
    ).encode()


def sdi_mail(
    notice: bytes, notice_name: str, kind: str, *, sender: str = SDI_BOX, zip_name: str = ""
) -> bytes:
    """The PEC an SdI box sends: its message, inside the SdI gateway's transport envelope."""
    boundary = f"=={uuid.uuid4().hex}"
    if zip_name:
        notice, notice_name = _zipped({notice_name: notice}), zip_name
    kind_of = "zip" if zip_name else "xml" if notice_name.endswith(".xml") else "pkcs7-mime"
    attachment = base64.encodebytes(notice).decode()
    inner = crlf(
        f"From: {sender}\nTo: {SENDER}\nSubject: {_SDI_ROOTS[kind][1]} 4501237\n"
        f"Date: {format_datetime(WHEN)}\nMessage-ID: <{uuid.uuid4().hex}@pec.fatturapa.it>\n"
        f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{_SDI_ROOTS[kind][1]}\n"
        f'--{boundary}\nContent-Type: application/{kind_of}; name="{notice_name}"\n'
        "Content-Transfer-Encoding: base64\n"
        f'Content-Disposition: attachment; filename="{notice_name}"\n\n{attachment}'
        f"--{boundary}--\n"
    )
    return transport_envelope(inner, provider=SDI_GATEWAY, sender=sender)


def signed_p7m(content: bytes) -> bytes:
    """A CAdES-like `.p7m`: the content inside its own CMS signature (DER)."""
    certificate, key = provider_identity()
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def _zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IT01234567890_00001.xml", b"<p:FatturaElettronica/>")
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
