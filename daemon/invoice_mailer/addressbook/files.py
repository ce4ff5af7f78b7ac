"""Reading an address book file into rows as written: CSV (Excel, invoicing programs) or YAML.

Kept apart from the validation in addressbook.py: this side knows encodings, delimiters,
headings and YAML line numbers; the other side knows what a valid customer is.
"""

from __future__ import annotations

import codecs
import csv as csvlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoice_mailer.addressbook import csvheadings
from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.model import CSV_FIELDS, CsvConfig
from invoice_mailer.config.yamlread import read_yaml
from invoice_mailer.errors import ConfigError, Problem, permission_advice

FIELDS = CSV_FIELDS


@dataclass
class Row:
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


# --- CSV ------------------------------------------------------------------------------------


def csv_rows(path: Path, config: CsvConfig) -> list[Row]:
    """The data rows of a CSV export, with the line each starts on (for the admin's report)."""
    reader, offset, header = _open_csv(path, config)
    try:
        columns = columns_of(path, header, config, offset + 1)
        rows, previous = [], reader.line_num
        for cells in reader:
            line, previous = offset + previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # Excel writes ";;;;" for rows emptied by hand
            values = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
            keys = {name: header[i].strip() for name, i in columns.items()}
            rows.append(Row(line, values, keys, from_excel=True))
    except csvlib.Error as exc:
        raise ConfigError(
            str(path), [Problem(offset + reader.line_num, "", f"not valid CSV ({exc})")]
        ) from None
    return rows


def heading_warnings(path: Path, config: CsvConfig) -> list[Problem]:
    """Optional columns the file lacks (name, P.IVA, codice fiscale, language), with the mapping
    to write.

    For `check`: the book works without them, but a customer found by P.IVA, greeted by name or
    written to in their language needs them.
    """
    _reader, offset, header = _open_csv(path, config)
    names = config.columns
    found = csvheadings.suggest(header, names)
    problems = []
    for name in ("name", "vat", "tax_code", "language"):
        heading = getattr(names, name)
        if not csvheadings.present(header, heading) and (name in found or name == "name"):
            label = csvheadings.LABELS[name]
            looks = f"; {found[name]!r} looks like it" if name in found else ""
            problems.append(Problem(offset + 1, "", f"no column {heading!r} for {label}{looks}"))
    if problems and found:
        problems.append(Problem(offset + 1, "", csvheadings.advice(found)))
    return problems


def _open_csv(path: Path, config: CsvConfig) -> tuple[Any, int, list[str]]:
    """A csv reader past the header, the lines skipped before it (Excel's sep=), the header."""
    text = decode(path, config.encoding)
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
    except csvlib.Error as exc:
        raise ConfigError(str(path), [Problem(offset + 1, "", f"not valid CSV ({exc})")]) from None
    return reader, offset, header


def columns_of(path: Path, header: list[str], config: CsvConfig, line: int) -> dict[str, int]:
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
    suggested = csvheadings.suggest(header, names)
    if problems and set(suggested) & {"code", "email", "pec"}:  # advice that fixes a problem
        problems.append(Problem(line, "", csvheadings.advice(suggested)))
    if problems:
        raise ConfigError(str(path), problems)
    return columns


def decode(path: Path, encoding: str) -> str:
    """Text of the file; auto is UTF-8 (BOM or not), else Windows-1252 as Excel writes in Italy."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "does not exist") from None
    except PermissionError:
        advice = permission_advice()
        raise ConfigError(str(path), f"cannot be read: permission denied; {advice}") from None
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


def yaml_rows(path: Path) -> list[Row]:
    """A list of customers, or `customers:` holding one; lines as read_yaml indexes them."""
    try:
        data, lines = read_yaml(path)
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
        row = Row(lines.get(here, 0), {})
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
