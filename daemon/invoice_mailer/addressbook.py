"""The address book ("Anagrafico Clienti"): customers from a CSV or YAML file.

Every bad row is reported with its line and left out, and the rest keeps working: one typo in
a 300-row export must not stop the invoices of the other 299 customers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import yamlsource as ys
from .addressbook_files import Row, csv_rows, yaml_rows
from .config import KINDS, CsvConfig
from .errors import ConfigError, Problem

log = logging.getLogger(__name__)

_PREFER = {"pec": "pec", "email": "email", "e-mail": "email", "mail": "email"}
_VAT = re.compile(r"[A-Z]{2}[0-9A-Z+*]{2,12}")
_TAX_CODE = re.compile(r"[A-Z0-9]{11,16}")  # FatturaPA's CodiceFiscaleType


@dataclass(frozen=True)
class Customer:
    code: str
    name: str = ""
    emails: tuple[str, ...] = ()
    pecs: tuple[str, ...] = ()
    vat: str | None = None
    tax_code: str | None = None
    send: tuple[str, ...] | None = None  # overrides customers.send for this customer
    prefer: str | None = None  # overrides customers.prefer for this customer
    line: int = 0

    def addresses(self, default_prefer: str) -> tuple[str, ...]:
        """The addresses of the preferred kind (pec or email) if there are any, else the others."""
        prefer = self.prefer or default_prefer
        first, second = (self.pecs, self.emails) if prefer == "pec" else (self.emails, self.pecs)
        return first or second


def normalise_vat(value: str) -> str:
    """'it 012.345.678 90' → 'IT01234567890', the form FatturaPA writes (IdPaese + IdCodice)."""
    vat = re.sub(r"[\s.\-]", "", str(value)).upper()
    return "IT" + vat if re.fullmatch(r"[0-9]{11}", vat) else vat


def normalise_tax_code(value: str) -> str:
    """Codice fiscale as FatturaPA writes it: upper case, no spaces."""
    return re.sub(r"\s", "", str(value)).upper()


class AddressBook:
    """Customers indexed by code, P.IVA, codice fiscale and address, plus the rows left out."""

    def __init__(
        self,
        customers: Iterable[Customer] = (),
        problems: Iterable[Problem] = (),
        skipped: int = 0,
    ):
        self.customers = tuple(customers)
        self.problems = list(problems)
        self.skipped = skipped  # rows left out; a row may have more than one problem
        self._codes: dict[str, Customer] = {}
        self._vats: dict[str, Customer] = {}
        self._tax_codes: dict[str, Customer] = {}
        self._emails: dict[str, Customer] = {}
        for customer in self.customers:
            self._codes.setdefault(_code_key(customer.code), customer)
            if customer.vat:
                self._vats.setdefault(customer.vat, customer)
            if customer.tax_code:
                self._tax_codes.setdefault(customer.tax_code, customer)
            for address in customer.pecs + customer.emails:
                self._emails.setdefault(address.casefold(), customer)

    def by_code(self, code: str) -> Customer | None:
        return self._codes.get(_code_key(code))

    def by_vat(self, vat: str) -> Customer | None:
        return self._vats.get(normalise_vat(vat)) if vat else None

    def by_tax_code(self, tax_code: str) -> Customer | None:
        return self._tax_codes.get(normalise_tax_code(tax_code)) if tax_code else None

    def by_email(self, address: str) -> Customer | None:
        return self._emails.get(address.strip().casefold())

    def __len__(self) -> int:
        return len(self.customers)

    def __iter__(self) -> Iterator[Customer]:
        return iter(self.customers)


def _code_key(code: str) -> str:
    return code.strip().casefold()


def load_address_book(path: Path, csv: CsvConfig) -> AddressBook:
    """Read `path` (.csv or .yaml); raise ConfigError only when the whole file is unusable."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        rows = yaml_rows(path)
    elif suffix == ".csv":
        rows = csv_rows(path, csv)
    else:
        raise ConfigError(str(path), f"expected a .csv or .yaml file, got {path.name}")
    return _assemble(rows)


def _assemble(rows: list[Row]) -> AddressBook:
    """Validate each row, then the rules across rows; the first row of a code wins."""
    customers: list[Customer] = []
    problems: list[Problem] = []
    codes: dict[str, int] = {}
    vats: dict[str, Customer] = {}
    skipped = 0
    for row in rows:
        customer = _customer(row) if row.values else None
        if customer is not None:
            earlier = codes.get(_code_key(customer.code))
            other = vats.get(customer.vat) if customer.vat else None
            if earlier is not None:
                row.problem("code", f"code {customer.code} is already used on line {earlier}")
            elif other is not None:
                message = f"P.IVA {customer.vat} already belongs to customer {other.code}"
                row.problem("vat", f"{message} (line {other.line})")
        # A bad row still claims its code, so that a later duplicate cannot take its mail.
        code = row.values.get("code")
        if isinstance(code, str) and code.strip():
            codes.setdefault(_code_key(code), row.line)
        if row.problems:
            skipped += 1
            who = f"customer {code.strip()}" if isinstance(code, str) and code.strip() else "row"
            row.problems.sort(key=lambda p: p.line or 0)
            problems += [
                Problem(p.line, p.key, f"{p.message} ({who} left out)") for p in row.problems
            ]
        elif customer is not None:
            customers.append(customer)
            if customer.vat:
                vats[customer.vat] = customer
    return AddressBook(customers, problems, skipped)


def _customer(row: Row) -> Customer | None:
    """Build the customer of `row`, or record on the row what is wrong with it."""
    parsed: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        try:
            parsed[name] = parse(row.values.get(name), row.from_excel)
        except ys.Invalid as exc:
            row.problem(name, str(exc))
    if "email" in parsed and "pec" in parsed and not parsed["email"] + parsed["pec"]:
        where = "/".join(row.keys.get(name, name) for name in ("email", "pec") if name in row.keys)
        row.problems.append(Problem(row.line, where or "email/pec", "no e-mail or PEC address"))
    if row.problems:
        return None
    emails, pecs = parsed.pop("email"), parsed.pop("pec")
    return Customer(emails=emails, pecs=pecs, line=row.line, **parsed)


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
        kind = {list: "a list", dict: "a mapping"}.get(type(value), repr(value))
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


_PARSERS = {
    "code": _code,
    "name": _name,
    "email": _addresses,
    "pec": _addresses,
    "vat": _vat,
    "tax_code": _tax_code,
    "send": _send,
    "prefer": _prefer,
}
