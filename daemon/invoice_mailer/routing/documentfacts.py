"""What a document says about itself: the template fields and lookup keys routing uses, from
its file name (customers.filename) and, for FatturaPA XML, its content.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from invoice_mailer.config.model import Config
from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa import reader as fatturapa
from invoice_mailer.routing.planning import pair_key

log = logging.getLogger(__name__)

# Date groups of customers.filename, as invoicing programs write dates in file names.
_NAME_DATES = ("%Y-%m-%d", "%Y%m%d", "%Y_%m_%d", "%Y.%m.%d", "%d-%m-%Y", "%d_%m_%Y", "%d.%m.%Y")


def document_facts(
    config: Config, name: str, kind: str, data: bytes | None, taken_at: float
) -> dict[str, Any]:
    """Template fields and lookup keys of one document, from its name and, for XML, its content.

    The content's number and date win over the name's: they are the invoice's own. The name's
    `doc` wins over TipoDocumento, as docs/DESIGN.md says. With neither, the date is the day taken.
    """
    named = config.customers.filename_regex.match(name)
    found = named.groupdict() if named else {}
    groups = {k: v.strip() for k, v in found.items() if v and v.strip()}
    facts: dict[str, Any] = {
        k: groups[k] for k in ("customer", "vat", "tax_code", "email") if k in groups
    }
    invoice = _invoice(name, kind, data)
    if invoice is not None:
        first = invoice.invoices[0]
        facts.update(
            doc=groups.get("doc") or first.doc,
            number=", ".join(i.number for i in invoice.invoices),
            date=f"{first.date:%d/%m/%Y}",
            year=str(first.date.year),
            date_from="xml",
            xml_vat=invoice.customer_vat,
            xml_tax_code=invoice.customer_tax_code,
            xml_pec=invoice.pec_destinatario,
            xml_name=invoice.customer_name,
            xml_country=invoice.customer_country,
            xml_abroad=invoice.abroad,  # customers.foreign_language, when the book has none
        )
        # A batch (several invoices in one file) gets no pair key: it goes alone, at once.
        # Holding it for every PDF of its invoices, or attaching it to each, would delay or
        # duplicate it; its PDFs wait customers.pair_wait for a single XML, then go alone.
        if len(invoice.invoices) == 1:
            facts["pair"] = pair_key(first.number, facts["year"])
        return facts
    day = _name_date(name, groups.get("date"))
    facts["date_from"] = "name" if day else "taken"
    day = day or datetime.datetime.fromtimestamp(taken_at, tz=datetime.UTC).astimezone().date()
    facts.update(
        doc=groups.get("doc") or fatturapa.DEFAULT_DOC_NAME,
        number=groups.get("number") or name.split(".")[0],
        date=f"{day:%d/%m/%Y}",
        year=groups.get("year") or str(day.year),
    )
    if groups.get("number"):  # a number made up from the file name pairs with nothing
        facts["pair"] = pair_key(groups["number"], facts["year"])
    return facts


def _invoice(name: str, kind: str, data: bytes | None) -> fatturapa.FatturaInfo | None:
    if kind == "pdf" or data is None:
        return None
    try:
        return fatturapa.parse_file_bytes(name, data)
    except DocumentError as exc:
        # Intake already checked it is well-formed (or a p7m that opens): some other XML.
        log.info("%s: not read as FatturaPA (%s); routing it by its name only", name, exc)
        return None


def _name_date(name: str, text: str | None) -> datetime.date | None:
    if not text:
        return None
    for layout in _NAME_DATES:
        try:
            # A calendar day from a file name: no time of day, so no zone to attach.
            return datetime.datetime.strptime(text, layout).date()  # noqa: DTZ007
        except ValueError:
            continue
    log.warning("%s: %r in its name is not a date; using the day it was taken", name, text)
    return None
