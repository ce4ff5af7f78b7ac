"""The FatturaPA schema's own limits on the fields that reach subjects, bodies and lookups.

A 400,000-character <Numero> once stalled every message behind it (header folding is slow in
the length of a word) and put megabytes into a subject. No invoice the Sistema di Interscambio
accepts has such a field, so one that does is refused with the schema's rule as the reason.
The check streams (expat callbacks), so an oversized field is refused as soon as it is seen.
"""

from __future__ import annotations

import datetime
import re

from invoice_mailer.errors import DocumentError

SCHEMA = "schema FatturaPA"
_TEXT_CAP = 1024  # more text than any limit below: stop collecting, it is too long already
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?")

# (parent, element) -> (fewest, most) characters, from the FatturaPA v1.2 XSD types.
LENGTHS = {
    ("DatiGeneraliDocumento", "Numero"): (1, 20),  # String20Type
    ("Anagrafica", "Denominazione"): (1, 80),  # String80LatinType
    ("Anagrafica", "Nome"): (1, 60),  # String60LatinType
    ("Anagrafica", "Cognome"): (1, 60),
    ("DatiAnagrafici", "CodiceFiscale"): (11, 16),  # CodiceFiscaleType
    ("IdFiscaleIVA", "IdPaese"): (2, 2),  # NazioneType
    ("IdFiscaleIVA", "IdCodice"): (1, 28),  # CodiceType
    ("DatiTrasmissione", "CodiceDestinatario"): (6, 7),  # CodiceDestinatarioType
    ("DatiTrasmissione", "PECDestinatario"): (7, 256),  # EmailType
}
_TIPO_DOCUMENTO = re.compile(r"TD[0-9]{2}")  # TipoDocumentoType: TD01 ... TD28
_FORMATS = {("DatiGeneraliDocumento", "Data"), ("DatiGeneraliDocumento", "TipoDocumento")}

# Groups of customers.filename, bounded like the fields they stand for.
NAME_GROUPS = {
    "number": 20,
    "doc": 40,
    "year": 4,
    "date": 10,
    "customer": 40,
    "vat": 30,
    "tax_code": 16,
    "email": 254,
}
MAX_NAME_BYTES = 255  # NAME_MAX: no filesystem of ours holds a longer name


class SchemaLimit(DocumentError):
    """A field longer (or otherwise other) than the FatturaPA schema allows: final."""


def check_name(name: str, pattern: re.Pattern[str]) -> None:
    """Refuse a file name, or a group of the customers.filename pattern, beyond its bound."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        raise SchemaLimit(f"nome del file più lungo di {MAX_NAME_BYTES} byte ({size})")
    match = pattern.match(name)
    for group, value in (match.groupdict() if match else {}).items():
        limit = NAME_GROUPS.get(group)
        if value and limit and len(value.strip()) > limit:
            raise SchemaLimit(
                f"il gruppo {group} del nome del file è più lungo di {limit} caratteri "
                "(customers.filename)"
            )


class FieldLimits:
    """Expat target callbacks (start, data, end) checking FatturaPA fields while parsing."""

    def __init__(self) -> None:
        self._path: list[str] = []
        self._fattura = False  # only a FatturaElettronica's fields are bound by its schema
        self._text: list[str] | None = None
        self._length = 0

    def start(self, tag: str, _attrs: object = None) -> None:
        local = _local(tag)
        if not self._path:
            self._fattura = local == "FatturaElettronica"
        parent = self._path[-1] if self._path else ""
        self._path.append(local)
        watched = self._fattura and ((parent, local) in LENGTHS or (parent, local) in _FORMATS)
        self._text, self._length = ([] if watched else None), 0

    def data(self, text: str) -> None:
        if self._text is not None:
            self._length += len(text)
            if self._length <= _TEXT_CAP:  # memory stays bounded whatever the file holds
                self._text.append(text)

    def end(self, _tag: str) -> None:
        local = self._path.pop()
        if self._text is not None:
            text = "".join(self._text).strip()
            if self._length > _TEXT_CAP:
                text = "x" * (_TEXT_CAP + 1)  # longer than any limit: refused as such
            check_field(self._path[-1] if self._path else "", local, text)
        self._text = None

    def close(self) -> None:
        return None


def check_field(parent: str, local: str, text: str) -> None:
    """Raise SchemaLimit when the text of parent/local breaks the schema's rule for it."""
    if (parent, local) in LENGTHS:
        fewest, most = LENGTHS[(parent, local)]
        if len(text) > most:
            raise SchemaLimit(f"{local} più lungo di {most} caratteri ({SCHEMA})")
        if text and len(text) < fewest:
            raise SchemaLimit(f"{local} più corto di {fewest} caratteri ({SCHEMA})")
    elif (parent, local) not in _FORMATS:
        return
    elif local == "TipoDocumento" and text and not _TIPO_DOCUMENTO.fullmatch(text):
        raise SchemaLimit(f"TipoDocumento {_shown(text)} non valido ({SCHEMA}: TD e due cifre)")
    elif local == "Data" and text and not _valid_date(text):
        raise SchemaLimit(f"Data {_shown(text)} non è una data valida ({SCHEMA}: AAAA-MM-GG)")


def _valid_date(text: str) -> bool:
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        return False
    try:
        datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def _shown(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:30] + "…")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
