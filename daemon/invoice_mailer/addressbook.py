"""The address book ("Anagrafico Clienti"): customers from a CSV or YAML file.

Every bad row is reported with its line and left out, and the rest keeps working: one typo in
a 300-row export must not stop the invoices of the other 299 customers.
"""

from __future__ import annotations

import codecs
import csv as csvlib
import io
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlsource as ys
from .config import KINDS, CsvConfig
from .errors import ConfigError, Problem

log = logging.getLogger(__name__)

FIELDS = ("code", "name", "email", "pec", "vat", "tax_code", "send", "prefer")
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
        rows = _yaml_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path, csv)
    else:
        raise ConfigError(str(path), f"expected a .csv or .yaml file, got {path.name}")
    return _assemble(rows)


@dataclass
class _Row:
    """One customer as written, before validation."""

    line: int
    values: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)  # field → the name the file uses
    lines: dict[str, int] = field(default_factory=dict)  # field → its own line (YAML)
    problems: list[Problem] = field(default_factory=list)  # found while reading the row
    from_excel: bool = False

    def problem(self, name: str, message: str) -> None:
        self.problems.append(
            Problem(self.lines.get(name, self.line), self.keys.get(name, name), message)
        )


def _assemble(rows: list[_Row]) -> AddressBook:
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


def _customer(row: _Row) -> Customer | None:
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


# --- CSV ------------------------------------------------------------------------------------


def _csv_rows(path: Path, config: CsvConfig) -> list[_Row]:
    text = _decode(path, config.encoding)
    if not text.strip():
        raise ConfigError(str(path), "is empty; expected a header row such as Codice;Email;PEC")
    stream = io.StringIO(text, newline="")
    head = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    offset, delimiter = 0, config.delimiter
    sep = re.fullmatch(r'"?sep=(.)"?\s*', head, re.IGNORECASE)  # Excel's own delimiter hint
    if sep:
        stream.readline()
        offset, delimiter = 1, sep.group(1)
    elif delimiter == "auto":
        delimiter = ";" if head.count(";") >= head.count(",") else ","
    reader = csvlib.reader(stream, delimiter=delimiter)
    try:
        header = next(reader, [])
        columns = _columns(path, header, config, offset + 1)
        rows, previous = [], reader.line_num
        for cells in reader:
            line, previous = offset + previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # Excel writes ";;;;" for rows emptied by hand
            values = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
            keys = {name: header[i].strip() for name, i in columns.items()}
            rows.append(_Row(line, values, keys, from_excel=True))
    except csvlib.Error as exc:
        raise ConfigError(
            str(path), [Problem(offset + reader.line_num, "", f"not valid CSV ({exc})")]
        ) from None
    return rows


def _columns(path: Path, header: list[str], config: CsvConfig, line: int) -> dict[str, int]:
    """Field → column index, matching headings case-insensitively; the first duplicate wins."""
    found: dict[str, int] = {}
    for index, heading in enumerate(header):
        found.setdefault(heading.strip().casefold(), index)
    names = config.columns
    columns = {f: found[h] for f in FIELDS if (h := getattr(names, f).strip().casefold()) in found}
    headings = ", ".join(repr(h.strip()) for h in header) or "none"
    hint = f"(headings found: {headings})"
    if len(header) == 1 and any(ch in header[0] for ch in ";,\t"):
        hint += "; is customers.csv.delimiter right?"
    problems = []
    if "code" not in columns:
        message = f"no column {names.code!r} for the customer code {hint}"
        problems.append(
            Problem(line, "", f"{message}; rename it or set customers.csv.columns.code")
        )
    if "email" not in columns and "pec" not in columns:
        message = f"no column {names.email!r} or {names.pec!r} for the addresses {hint}"
        problems.append(Problem(line, "", f"{message}; set customers.csv.columns.email or .pec"))
    if problems:
        raise ConfigError(str(path), problems)
    return columns


def _decode(path: Path, encoding: str) -> str:
    """Text of the file; auto is UTF-8 (BOM or not), else Windows-1252 as Excel writes in Italy."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "does not exist") from None
    except PermissionError:
        raise ConfigError(str(path), "cannot be read (permission denied)") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})") from None
    if encoding != "auto":
        choices = [encoding]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        choices = ["utf-16"]  # Excel's "Unicode text"
    else:
        choices = ["utf-8-sig", "cp1252"]
    for choice in choices:
        try:
            return data.decode(choice).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            error = exc
    line = data[: error.start].count(b"\n") + 1
    names = [{"utf-8-sig": "UTF-8", "cp1252": "Windows-1252"}.get(c, c) for c in choices]
    what = f"neither {names[0]} nor {names[1]}" if len(names) == 2 else f"not {names[0]}"
    message = f"the text is {what} (byte {error.start}); set customers.csv.encoding"
    raise ConfigError(str(path), [Problem(line, "", message)])


# --- YAML -----------------------------------------------------------------------------------


def _yaml_rows(path: Path) -> list[_Row]:
    """A list of customers, or `customers:` holding one; lines as read_yaml indexes them."""
    try:
        data, lines = ys.read_yaml(path)
    except ys.Invalid as exc:
        raise ConfigError(str(path), str(exc)) from None
    expected = "expected a list of customers (- code: C001 …), or customers: holding one"
    if data is None:
        raise ConfigError(str(path), f"is empty; {expected}")
    prefix = ""
    if isinstance(data, dict):
        unknown = [str(key) for key in data if key != "customers"]
        if unknown:
            line = lines.get(unknown[0])
            raise ConfigError(str(path), [Problem(line, unknown[0], f"unknown key; {expected}")])
        data, prefix = data.get("customers") or [], "customers"
    if not isinstance(data, list):
        raise ConfigError(str(path), expected)
    rows = []
    for index, item in enumerate(data):
        here = f"{prefix}[{index}]"
        row = _Row(lines.get(here, 0), {})
        rows.append(row)
        if not isinstance(item, dict):
            row.problem(here, f"expected a mapping with keys {', '.join(FIELDS)}")
            continue
        row.values = {str(key): value for key, value in item.items()}
        row.lines = {key: lines[f"{here}.{key}"] for key in row.values if f"{here}.{key}" in lines}
        for key in row.values:
            if key not in FIELDS:
                row.problem(key, f"unknown key (valid keys: {', '.join(FIELDS)})")
    return rows


# --- The service's current book ---------------------------------------------------------------


class AddressBookSource:
    """The book in force: reloaded when its file changes, kept when the new file is unusable."""

    def __init__(self, path: Path | None, csv: CsvConfig):
        self.path = path
        self.csv = csv
        self._book = AddressBook()
        self._stamp: tuple[int, ...] | None = ()  # (): never read; None: the file is missing
        self._lock = threading.Lock()

    @property
    def book(self) -> AddressBook:
        return self._book

    def load(self) -> AddressBook:
        """The initial load: raise ConfigError when the file cannot be used at all."""
        if self.path is not None:
            with self._lock:
                stamp = self._peek()
                self._swap(load_address_book(self.path, self.csv), stamp, "loaded")
        return self._book

    def reload_if_changed(self) -> bool:
        """One stat when nothing changed; True when a new book is in force."""
        if self.path is None:
            return False
        with self._lock:
            stamp = self._peek()
            if stamp == self._stamp:
                return False
            try:
                book: AddressBook | None = load_address_book(self.path, self.csv)
            except ConfigError as exc:
                book, error = None, exc
            if self._peek() != stamp:
                return False  # changed while being read: the next call reads the finished file
            if book is None:
                self._stamp = stamp  # report a broken file once, not at every check
                kept = f"keeping the previous address book ({len(self._book)} customers)"
                log.error("%s\n  %s", error, kept)
                return False
            self._swap(book, stamp, "reloaded")
            return True

    def _peek(self) -> tuple[int, ...] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _swap(self, book: AddressBook, stamp: tuple[int, ...] | None, verb: str) -> None:
        self._book, self._stamp = book, stamp
        rows = "row" if book.skipped == 1 else "rows"
        log.info(
            "address book %s: %d customers (%d %s skipped)", verb, len(book), book.skipped, rows
        )
        for problem in book.problems:
            log.warning("%s: %s", self.path, problem)
