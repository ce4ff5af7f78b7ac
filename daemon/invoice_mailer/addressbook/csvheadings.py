"""Which CSV heading is which field, when the file does not use the configured names.

Excel exports say `Ragione sociale;E-mail;P.IVA`; the admin should be told the exact
`customers.csv.columns` mapping to write, not only that `RagioneSociale` is missing.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata

from invoice_mailer.config.model import CsvColumns

# Normalised headings (letters and digits, lower case, no accents) that usually mean a field.
_USUAL = {
    "code": ("codice", "codicecliente", "codcliente", "codcli", "cod", "idcliente", "code"),
    "name": (
        "ragionesociale",
        "ragsociale",
        "ragsoc",
        "denominazione",
        "nominativo",
        "nome",
        "cliente",
        "name",
        "company",
    ),
    "email": ("email", "mail", "indirizzoemail", "postaelettronica", "emailaddress"),
    "pec": ("pec", "indirizzopec", "emailpec", "mailpec", "postacertificata"),
    "vat": ("piva", "partitaiva", "partiva", "pi", "vat", "vatnumber"),
    "tax_code": ("codicefiscale", "codfiscale", "codfisc", "cf", "taxcode"),
    "language": ("lingua", "linguacliente", "language", "lang", "idioma", "sprache", "langue"),
}
LABELS = {
    "code": "the customer code",
    "name": "the customer name",
    "email": "the e-mail addresses",
    "pec": "the PEC addresses",
    "vat": "the P.IVA",
    "tax_code": "the codice fiscale",
    "language": "the customer's language",
}


def normalise(heading: str) -> str:
    """'E-mail' -> 'email', 'P.IVA' -> 'piva', 'Ragione sociale' -> 'ragionesociale'."""
    plain = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


def present(header: list[str], heading: str) -> bool:
    wanted = heading.strip().casefold()
    return any(cell.strip().casefold() == wanted for cell in header)


def suggest(header: list[str], columns: CsvColumns) -> dict[str, str]:
    """Field -> a heading of the file that probably holds it, for fields whose configured
    heading is not in the file; each heading offered once, exact synonyms before look-alikes."""
    cells = [cell.strip() for cell in header if cell.strip()]
    taken = {cell for cell in cells if any(present([cell], getattr(columns, f)) for f in _USUAL)}
    found: dict[str, str] = {}
    for exact in (True, False):
        for field, usual in _USUAL.items():
            if field in found or present(header, getattr(columns, field)):
                continue
            for cell in cells:
                if cell in taken:
                    continue
                key = normalise(cell)
                fits = key in usual if exact else difflib.get_close_matches(key, usual, 1, 0.8)
                if key and fits:
                    found[field] = cell
                    taken.add(cell)
                    break
    return {field: found[field] for field in _USUAL if field in found}


def advice(found: dict[str, str]) -> str:
    """The YAML to paste under customers.csv: `columns: {name: "Ragione sociale", …}`."""
    pairs = ", ".join(
        f"{field}: {json.dumps(heading, ensure_ascii=False)}" for field, heading in found.items()
    )
    return f"to use the file's headings, write under customers.csv: columns: {{{pairs}}}"
