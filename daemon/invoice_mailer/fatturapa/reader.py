"""Reads what routing needs from a FatturaPA invoice: who the customer is, and which invoices.

Only a handful of fields matter (customer identifiers and name, SdI recipient code or PEC,
type, number and date of each invoice), so the parser navigates by local name and ignores
namespaces: real exports use `p:`, `ns2:`, a default namespace with `xmlns=""` on the children,
the legacy v1.1 namespace, or none at all. Parsing follows the intake's safety rules
(defusedxml, DTD refused) and its tolerance of BOMs and Windows-1252 bytes.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa import p7m
from invoice_mailer.fatturapa.safexml import parse_xml

# TipoDocumento codes an Italian office names in a subject line; the rest are "Documento".
DOC_NAMES = {
    "TD01": "Fattura",
    "TD02": "Acconto/anticipo su fattura",
    "TD04": "Nota di credito",
    "TD05": "Nota di debito",
    "TD06": "Parcella",
    "TD24": "Fattura differita",
}
DEFAULT_DOC_NAME = "Documento"
# SdI's CodiceDestinatario for a customer abroad (who has no SdI code): the office sends it.
FOREIGN_RECIPIENT_CODE = "XXXXXXX"
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")  # xs:date may carry a zone: 2014-12-18+01:00


@dataclass(frozen=True)
class InvoiceInfo:
    """One invoice of the file (one FatturaElettronicaBody)."""

    doc_type: str  # TipoDocumento, e.g. "TD01"
    doc: str  # its Italian name, for subjects: "Fattura", "Nota di credito", ...
    number: str  # Numero, as written (may contain "/")
    date: datetime.date  # Data


@dataclass(frozen=True)
class FatturaInfo:
    """The customer and the invoices of one FatturaPA file."""

    format: str  # FormatoTrasmissione, else the root's versione: "FPR12" or "FPA12"
    customer_vat: str | None  # IdPaese + IdCodice, e.g. "IT09876543210"
    customer_tax_code: str | None  # CodiceFiscale
    customer_name: str  # Denominazione, or Nome + " " + Cognome
    codice_destinatario: str | None
    pec_destinatario: str | None
    invoices: tuple[InvoiceInfo, ...]  # one per body: a batch file has several
    customer_country: str | None = None  # IdFiscaleIVA's IdPaese, else Sede's Nazione: "DE"

    @property
    def abroad(self) -> bool:
        """The customer is not in Italy: a foreign country, or SdI's code for one."""
        foreign_code = (self.codice_destinatario or "").upper() == FOREIGN_RECIPIENT_CODE
        return foreign_code or self.customer_country not in (None, "IT")


def parse_file_bytes(
    name: str, data: bytes, max_p7m_size: int = p7m.DEFAULT_MAX_SIZE
) -> FatturaInfo:
    """Parse a file's bytes as found on disk: a `.p7m` envelope is opened first."""
    if name.lower().endswith(".p7m"):
        data = p7m.unwrap(data, max_p7m_size)
    return parse(data)


def parse(data: bytes) -> FatturaInfo:
    """Parse FatturaPA XML bytes; raise DocumentError when they are not a usable invoice."""
    root = parse_xml(data)
    if _local(root.tag) != "FatturaElettronica":
        raise DocumentError(
            f"not a FatturaPA invoice: the root element is {_local(root.tag)}, "
            "not FatturaElettronica"
        )
    header = _child(root, "FatturaElettronicaHeader")
    if header is None:
        raise DocumentError("not a FatturaPA invoice: FatturaElettronicaHeader is missing")
    transmission = _child(header, "DatiTrasmissione")
    customer = _child(header, "CessionarioCommittente", "DatiAnagrafici")
    country = _text(customer, "IdFiscaleIVA", "IdPaese") or _text(
        header, "CessionarioCommittente", "Sede", "Nazione"
    )
    return FatturaInfo(
        format=_text(transmission, "FormatoTrasmissione") or (root.get("versione") or "").strip(),
        customer_vat=_vat(customer),
        customer_tax_code=_text(customer, "CodiceFiscale"),
        customer_name=_name(customer),
        codice_destinatario=_text(transmission, "CodiceDestinatario"),
        pec_destinatario=_text(transmission, "PECDestinatario"),
        invoices=_invoices(root),
        customer_country=country.upper() if country else None,
    )


def _invoices(root: Element) -> tuple[InvoiceInfo, ...]:
    bodies = [child for child in root if _local(child.tag) == "FatturaElettronicaBody"]
    if not bodies:
        raise DocumentError("not a FatturaPA invoice: no FatturaElettronicaBody")
    invoices = []
    for index, body in enumerate(bodies, start=1):
        where = f"body {index} of {len(bodies)}" if len(bodies) > 1 else "the body"
        general = _child(body, "DatiGenerali", "DatiGeneraliDocumento")
        number = _text(general, "Numero")
        if number is None:
            raise DocumentError(f"not a FatturaPA invoice: {where} has no Numero")
        date_text = _text(general, "Data")
        if date_text is None:
            raise DocumentError(f"not a FatturaPA invoice: {where} has no Data")
        doc_type = (_text(general, "TipoDocumento") or "").upper()
        invoices.append(
            InvoiceInfo(
                doc_type=doc_type,
                doc=DOC_NAMES.get(doc_type, DEFAULT_DOC_NAME),
                number=number,
                date=_date(date_text, where),
            )
        )
    return tuple(invoices)


def _date(text: str, where: str) -> datetime.date:
    match = _ISO_DATE.match(text)
    try:
        if match is None:
            raise ValueError(text)
        return datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        raise DocumentError(
            f"not a FatturaPA invoice: {where} has Data {text!r}, expected YYYY-MM-DD"
        ) from None


def _vat(customer: Element | None) -> str | None:
    code = _text(customer, "IdFiscaleIVA", "IdCodice")
    if code is None:
        return None
    country = _text(customer, "IdFiscaleIVA", "IdPaese") or ""
    return (country + code).upper().replace(" ", "")


def _name(customer: Element | None) -> str:
    company = _text(customer, "Anagrafica", "Denominazione")
    if company:
        return company
    parts = (_text(customer, "Anagrafica", name) for name in ("Nome", "Cognome"))
    return " ".join(part for part in parts if part)


def _local(tag: object) -> str:
    """The tag without its namespace: "{http://...}FatturaElettronica" -> "FatturaElettronica"."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: Element | None, *path: str) -> Element | None:
    """Follow direct children by local name, whatever namespace each one is in."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _text(element: Element | None, *path: str) -> str | None:
    """The trimmed text at path, or None when it is missing or blank."""
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None
