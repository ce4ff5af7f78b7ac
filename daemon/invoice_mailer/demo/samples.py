"""What the demo writes: sample FatturaPA XML and valid PDFs (made from scratch; the tests use
them too), an address book of invented customers, and a commented config.

They live in the package because the installed `invoice-mailer demo` cannot import tests/.
Each quirk seen in real exports is a keyword argument of make_fattura_xml, so a test states the
variant it means in one line.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

NS_V12 = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2"
NS_V11 = "http://www.fatturapa.gov.it/sdi/fatturapa/v1.1"
NAMESPACE_STYLES = ("p", "ns2", "default", "legacy", "none")
UTF8_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def make_fattura_xml(
    *,
    number: str = "123",
    date: str = "2014-12-18",
    doc_type: str = "TD01",
    invoices: Sequence[tuple[str, str, str]] | None = None,
    customer_vat: tuple[str, str] | None = ("IT", "09876543210"),
    customer_tax_code: str | None = None,
    customer_name: str | None = "DITTA BETA",
    first_name: str | None = None,
    last_name: str | None = None,
    codice_destinatario: str = "ABC1234",
    pec_destinatario: str | None = None,
    customer_nation: str | None = None,
    formato: str = "FPR12",
    namespace: str = "p",
    declaration: str | None = UTF8_DECLARATION,
    bom: bool = False,
    encoding: str = "utf-8",
    pad: str = "",
) -> bytes:
    """A FatturaPA file. `invoices` = [(doc_type, number, date), ...] makes a batch (one body
    each); `namespace` is one of NAMESPACE_STYLES; `encoding` is the bytes actually written,
    whatever `declaration` says; `pad` surrounds every value (trailing-space exports);
    `customer_nation` writes the customer's Sede with that Nazione ("FR")."""
    if namespace not in NAMESPACE_STYLES:
        raise ValueError(f"namespace must be one of {NAMESPACE_STYLES}")

    def value(tag: str, text: str) -> str:
        return f"<{tag}>{pad}{escape(text)}{pad}</{tag}>"

    vat = (
        "<IdFiscaleIVA>"
        + value("IdPaese", customer_vat[0])
        + value("IdCodice", customer_vat[1])
        + "</IdFiscaleIVA>"
        if customer_vat
        else ""
    )
    tax_code = value("CodiceFiscale", customer_tax_code) if customer_tax_code else ""
    if customer_name is not None:
        who = value("Denominazione", customer_name)
    else:
        who = value("Nome", first_name or "") + value("Cognome", last_name or "")
    pec = value("PECDestinatario", pec_destinatario) if pec_destinatario else ""
    seat = (
        "<Sede>" + value("Indirizzo", "Rue de la Paix 1") + value("CAP", "00000")
        + value("Comune", "Paris") + value("Nazione", customer_nation) + "</Sede>"
        if customer_nation
        else ""
    )  # fmt: skip
    header = (
        "<FatturaElettronicaHeader><DatiTrasmissione>"
        "<IdTrasmittente><IdPaese>IT</IdPaese><IdCodice>01234567890</IdCodice></IdTrasmittente>"
        "<ProgressivoInvio>00001</ProgressivoInvio>"
        f"{value('FormatoTrasmissione', formato)}{value('CodiceDestinatario', codice_destinatario)}"
        f"{pec}</DatiTrasmissione>"
        "<CedentePrestatore><DatiAnagrafici><IdFiscaleIVA><IdPaese>IT</IdPaese>"
        "<IdCodice>01234567890</IdCodice></IdFiscaleIVA><Anagrafica>"
        "<Denominazione>SOCIETA' ALPHA SRL</Denominazione></Anagrafica>"
        "<RegimeFiscale>RF01</RegimeFiscale></DatiAnagrafici></CedentePrestatore>"
        f"<CessionarioCommittente><DatiAnagrafici>{vat}{tax_code}<Anagrafica>{who}</Anagrafica>"
        f"</DatiAnagrafici>{seat}</CessionarioCommittente></FatturaElettronicaHeader>"
    )
    bodies = "".join(
        "<FatturaElettronicaBody><DatiGenerali><DatiGeneraliDocumento>"
        f"{value('TipoDocumento', kind)}<Divisa>EUR</Divisa>{value('Data', day)}"
        f"{value('Numero', num)}</DatiGeneraliDocumento></DatiGenerali>"
        "<DatiBeniServizi><DettaglioLinee><NumeroLinea>1</NumeroLinea>"
        "<Descrizione>Consulenza</Descrizione><PrezzoTotale>5.00</PrezzoTotale>"
        "<AliquotaIVA>22.00</AliquotaIVA></DettaglioLinee></DatiBeniServizi>"
        "</FatturaElettronicaBody>"
        for kind, num, day in (invoices or [(doc_type, number, date)])
    )
    inner = header + bodies
    if namespace == "default":
        # The root in the FatturaPA namespace by default, the children taken out of it again.
        inner = inner.replace("<FatturaElettronicaHeader>", '<FatturaElettronicaHeader xmlns="">')
        inner = inner.replace("<FatturaElettronicaBody>", '<FatturaElettronicaBody xmlns="">')
    version = "1.1" if namespace == "legacy" else formato
    root = {
        "p": ("p:FatturaElettronica", f'xmlns:p="{NS_V12}"'),
        "ns2": ("ns2:FatturaElettronica", f'xmlns:ns2="{NS_V12}"'),
        "default": ("FatturaElettronica", f'xmlns="{NS_V12}"'),
        "legacy": ("p:FatturaElettronica", f'xmlns:p="{NS_V11}"'),
        "none": ("FatturaElettronica", ""),
    }[namespace]
    text = f'{declaration or ""}<{root[0]} {root[1]} versione="{version}">{inner}</{root[0]}>'
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def make_pdf(size: int | None = None, text: str = "Fattura 123") -> bytes:
    """A real, minimal, valid PDF (catalog, pages, one page, content stream, xref, trailer,
    %%EOF); with `size`, the content stream is padded so the file is exactly that long."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    drawing = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET\n".encode("latin-1")
    if size is None:
        return _pdf(drawing)
    padding = 0
    for _ in range(5):  # the /Length digits change with the padding: converge in a few steps
        pdf = _pdf(drawing + b" " * padding)
        if len(pdf) == size:
            return pdf
        padding += size - len(pdf)
        if padding < 0:
            raise ValueError(f"a valid PDF needs at least {len(_pdf(drawing))} bytes")
    raise AssertionError("PDF padding did not converge")  # pragma: no cover


def _pdf(content: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# -- what the demo writes ------------------------------------------------------------------

SENDER = "fatture@rossi-demo.example"
ACCOUNTANT = "studio@commercialista.example"
ARCHIVE_COPY = "archivio@rossi-demo.example"
SIGNATURE_SEPARATOR = "-- "  # RFC 3676: the trailing space is part of it

# Invented customers: code, name, e-mail, PEC, P.IVA, language (as the invoicing program
# exports them); one abroad, written to in English (see "Customers abroad" in the README).
DEMO_CUSTOMERS = (
    (
        "C001",
        "Bianchi Costruzioni S.r.l.",
        "ufficio@bianchi.example",
        "bianchi@pec.example",
        "IT01987650321",
        "",
    ),
    ("C002", "Verdi Alimentari S.n.c.", "amministrazione@verdi.example", "", "IT04455660778", ""),
    ("C003", "Studio Tecnico Neri", "", "studio.neri@pec.example", "IT07788990011", ""),
    ("C004", "Harper & Sons Ltd", "accounts@harper.example", "", "IE6388047V", "en"),
)


def demo_address_book() -> str:
    """The "Anagrafico Clienti" as a CSV export: ';' separated, with a header row."""
    rows = ["Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale;Lingua"]
    rows += [";".join((*customer[:5], "", customer[5])) for customer in DEMO_CUSTOMERS]
    return "\n".join(rows) + "\n"


def demo_documents(day: datetime.date) -> list[tuple[str, bytes]]:
    """Invoices and an order as PDFs (named as the program names them) and two FatturaPA XML;
    one invoice is for the customer abroad."""
    year = day.year
    documents = [
        (f"Fattura_101_{year}_C001.pdf", make_pdf(text=f"Fattura 101/{year} - Bianchi")),
        (f"Fattura_102_{year}_C002.pdf", make_pdf(text=f"Fattura 102/{year} - Verdi")),
        (f"Ordine_17_{year}_C003.pdf", make_pdf(text=f"Ordine 17/{year} - Studio Neri")),
        (f"Fattura_103_{year}_C004.pdf", make_pdf(text=f"Fattura 103/{year} - Harper")),
    ]
    for number, (_code, name, _email, _pec, vat, _language) in zip(
        ("101", "102"), DEMO_CUSTOMERS, strict=False
    ):
        xml = make_fattura_xml(
            number=number, date=day.isoformat(), customer_vat=(vat[:2], vat[2:]), customer_name=name
        )
        documents.append((f"IT01234567890_00{number}.xml", xml))
    return documents


def demo_config(
    demo: Any, port: int, token: str, key: Path, ca: Path, book: Path, imap_port: int
) -> str:
    """The demo's config, commented: what a newcomer copies and edits for a real one.

    `demo` is the running invoice_mailer.demo.Demo (its folders)."""
    q = json.dumps  # a JSON string is a valid YAML double-quoted string, whatever the path
    return f"""\
# invoice-mailer demo configuration: a real one differs only in the values.
# config.example.yaml explains every key; [names] are the invoicing program's fields.
watch:
  # where the invoicing program writes its exports
  folder: {q(str(demo.export))}
  settle: 0.5s  # unchanged this long = completely written (default 2s)
# spool/, sent/YYYY/MM/, failed/ and ledger.db (default /var/lib/invoice-mailer)
state_dir: {q(str(demo.state))}
sender:  # [Mittente]
  address: {SENDER}
  name: Rossi S.r.l. (demo)
smtp:
  host: 127.0.0.1      # [Server], e.g. smtps.pec.aruba.it
  security: starttls   # [TLS/SSL] tls (port 465) | starttls (587) | none
  port: {port}
  # username: sender.address unless set  [Utente]
  # [Password]: the token `invoice-mailer encrypt-password` prints
  password: {q(token)}
  # the key that decrypts it, made by `invoice-mailer genkey`
  key_file: {q(str(key))}
  # only for a self-hosted server with its own CA (here: the demo's)
  ca_file: {q(str(ca))}
  timeout: 10s
signature: |  # [Firma]; "-- " (with its space) marks a signature for mail programs
  {SIGNATURE_SEPARATOR}
  Rossi S.r.l. - Amministrazione (demo)
copy_to: [{ARCHIVE_COPY}]  # [Copia a]
all_to:  # [Tutto a]: everything of a working session, in one message
  address: {ACCOUNTANT}
  session_gap: 3s  # default 10m; `invoice-mailer flush` closes a session at once
customers:  # [Anagrafico Clienti]
  address_book: {q(str(book))}
  prefer: pec  # the PEC address when a customer has both
  # The column Lingua of the address book (C004: en) picks the customer's language; Italian
  # without one, English for a FatturaPA XML whose customer is abroad (foreign_language).
  language: it
  foreign_language: en
# English is built in; another language is a few lines, e.g.
# templates:
#   de:
#     customer_subject: "{{doc}} Nr. {{number}} vom {{date}}"
#     customer_body: "Sehr geehrte Damen und Herren,\\nanbei {{doc}} Nr. {{number}}.\\n"
#     doc_names: {{Fattura: Rechnung, Nota di credito: Gutschrift, Ordine: Bestellung}}
retry:  # quick for the demo; the defaults are 3, 5m and 1h
  attempts_now: 2
  backoff_min: 2s
  backoff_max: 5s
receipts:  # proof of delivery: the receipts in the sender's mailbox, read over IMAP
  imap:
    host: 127.0.0.1      # e.g. imaps.pec.aruba.it; null turns receipts off
    security: tls        # tls (993) | starttls (143); never clear text
    port: {imap_port}
    # username, password and ca_file: the smtp ones unless set here
  pec: true              # the sender is a PEC mailbox: every message gets an accettazione
  poll: 5s               # IDLE tells the service at once; this is only the fallback
"""
