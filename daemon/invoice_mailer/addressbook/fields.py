"""One address-book cell as a value: the rules each column's text must meet, with the reason
an admin reads when it does not (the rows and the index are in addressbook.py).
"""

from __future__ import annotations

import re
from typing import Any

from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.languages import language_code
from invoice_mailer.config.model import KINDS

_PREFER = {"pec": "pec", "email": "email", "e-mail": "email", "mail": "email"}
_VAT = re.compile(r"[A-Z]{2}[0-9A-Z+*]{2,12}")
_TAX_CODE = re.compile(r"[A-Z0-9]{11,16}")  # FatturaPA's CodiceFiscaleType
_CONTAINERS: dict[type, str] = {list: "a list", dict: "a mapping"}


def normalise_vat(value: str) -> str:
    """'it 012.345.678 90' → 'IT01234567890', the form FatturaPA writes (IdPaese + IdCodice)."""
    vat = re.sub(r"[\s.\-]", "", str(value)).upper()
    return "IT" + vat if re.fullmatch(r"[0-9]{11}", vat) else vat


def normalise_tax_code(value: str) -> str:
    """Codice fiscale as FatturaPA writes it: upper case, no spaces."""
    return re.sub(r"\s", "", str(value)).upper()


def _cell(value: Any, exact: bool = False) -> str:
    """A CSV cell or YAML scalar as trimmed text.

    `exact` refuses YAML numbers: unquoted, 042 is read as octal 34 and 00042 as 42, and a
    customer code that changes silently could send an invoice to someone else.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = _CONTAINERS.get(type(value), repr(value))
        raise ys.Invalid(f"expected text, got {kind}")
    if exact:
        raise ys.Invalid(f'write it in quotes ("{value}"): YAML reads unquoted numbers as numbers')
    return str(value)


def _items(value: Any, separators: str) -> list[str]:
    """A YAML list, or one cell holding several values (Excel has no lists)."""
    values = value if isinstance(value, list) else [value]
    return [part.strip() for v in values for part in re.split(separators, _cell(v)) if part.strip()]


def _code(value: Any, _excel: bool) -> str:
    code = _cell(value, exact=True)
    if not code:
        raise ys.Invalid("is empty: every customer needs a code")
    if re.search(r"[\x00-\x1f\x7f]", code):
        raise ys.Invalid("must be on one line (it may end up in a mail subject)")
    return code


def _name(value: Any, _excel: bool) -> str:
    # A name reaches mail headers through the templates: no line breaks, ever.
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", _cell(value)).split())


def _addresses(value: Any, _excel: bool) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ys.check_address(item) for item in _items(value, r"[;,]")))


def _excel_digits(number: str, excel: bool) -> str:
    # Excel stores 01234567890 as a number and writes it back as 1234567890.
    lost_zeros = excel and re.fullmatch(r"[0-9]{8,10}", number)
    return number.zfill(11) if lost_zeros else number


def _vat(value: Any, excel: bool) -> str | None:
    raw = _cell(value, exact=True)
    if not raw:
        return None
    vat = normalise_vat(_excel_digits(re.sub(r"[\s.\-]", "", raw), excel))
    if not _VAT.fullmatch(vat) or (vat.startswith("IT") and not re.fullmatch(r"IT[0-9]{11}", vat)):
        raise ys.Invalid(f"expected a P.IVA like IT01234567890 or 01234567890, got {raw!r}")
    return vat


def _tax_code(value: Any, excel: bool) -> str | None:
    raw = _cell(value, exact=True)
    if not raw:
        return None
    tax_code = _excel_digits(normalise_tax_code(raw), excel)
    if not _TAX_CODE.fullmatch(tax_code):
        raise ys.Invalid(f"expected a codice fiscale (11 to 16 letters and digits), got {raw!r}")
    return tax_code


def _send(value: Any, _excel: bool) -> tuple[str, ...] | None:
    kinds = [kind.lower() for kind in _items(value, r"[\s;,+]+")]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ys.Invalid(f"expected {' and/or '.join(KINDS)}, got {unknown[0]!r}")
    return tuple(kind for kind in KINDS if kind in kinds) or None


def _prefer(value: Any, _excel: bool) -> str | None:
    word = _cell(value).lower()
    if word and word not in _PREFER:
        raise ys.Invalid(f"expected pec or email, got {_cell(value)!r}")
    return _PREFER.get(word)


def _language(value: Any, _excel: bool) -> str | None:
    """An ISO 639-1 code ("de", "EN"); empty: customers.language (or the XML's fallback)."""
    word = _cell(value)
    return language_code(word) if word else None


PARSERS = {
    "code": _code,
    "name": _name,
    "email": _addresses,
    "pec": _addresses,
    "vat": _vat,
    "tax_code": _tax_code,
    "send": _send,
    "prefer": _prefer,
    "language": _language,
}
