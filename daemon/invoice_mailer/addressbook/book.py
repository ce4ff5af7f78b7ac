"""The address book ("Anagrafico Clienti"): customers from a CSV or YAML file.

Every bad row is reported with its line and left out, and the rest keeps working: one typo in
a 300-row export must not stop the invoices of the other 299 customers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoice_mailer.addressbook.fields import PARSERS, normalise_tax_code, normalise_vat
from invoice_mailer.addressbook.files import Row, csv_rows, yaml_rows
from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.model import CsvConfig
from invoice_mailer.errors import ConfigError, Problem

log = logging.getLogger(__name__)


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
    language: str | None = None  # ISO 639-1; None: customers.language, or foreign_language
    line: int = 0

    def addresses(self, default_prefer: str) -> tuple[str, ...]:
        """The addresses of the preferred kind (pec or email) if there are any, else the others."""
        prefer = self.prefer or default_prefer
        first, second = (self.pecs, self.emails) if prefer == "pec" else (self.emails, self.pecs)
        return first or second


class AddressBook:
    """Customers indexed by code, P.IVA, codice fiscale and address, plus the rows left out.

    A key written on two rows is never guessed: `find` returns both customers and routing holds
    the document as ambiguous. Rows that agree on every address are one customer listed twice.
    """

    def __init__(
        self,
        customers: Iterable[Customer] = (),
        problems: Iterable[Problem] = (),
        skipped: int = 0,
    ):
        self.customers = tuple(customers)
        self.problems = list(problems)
        self.skipped = skipped  # rows left out; a row may have more than one problem
        self._index: dict[str, dict[str, list[Customer]]] = {key: {} for key in KEYS}
        self._emails: dict[str, Customer] = {}
        for customer in self.customers:
            for key, value in keys_of(customer):
                self._index[key].setdefault(value, []).append(customer)
            for address in customer.pecs + customer.emails:
                self._emails.setdefault(address.casefold(), customer)

    def find(self, key: str, value: str) -> tuple[Customer, ...]:
        """Every customer `value` names (key: code, vat or tax_code), each set of addresses once."""
        normal = {"code": _code_key, "vat": normalise_vat, "tax_code": normalise_tax_code}[key]
        found = self._index[key].get(normal(value), []) if value else []
        distinct: dict[tuple, Customer] = {}
        for customer in found:
            distinct.setdefault(same_addresses_key(customer), customer)
        return tuple(distinct.values())

    def by_code(self, code: str) -> Customer | None:
        return _one(self.find("code", code))

    def by_vat(self, vat: str) -> Customer | None:
        return _one(self.find("vat", vat))

    def by_tax_code(self, tax_code: str) -> Customer | None:
        return _one(self.find("tax_code", tax_code))

    def by_email(self, address: str) -> Customer | None:
        return self._emails.get(address.strip().casefold())

    def __len__(self) -> int:
        return len(self.customers)

    def __iter__(self) -> Iterator[Customer]:
        return iter(self.customers)


KEYS = ("code", "vat", "tax_code")
_KEY_LABELS = {"code": "code", "vat": "P.IVA", "tax_code": "codice fiscale"}


def keys_of(customer: Customer) -> list[tuple[str, str]]:
    """The lookup keys a customer's row gives, in the form the index holds them."""
    pairs = [("code", _code_key(customer.code))]
    pairs += [
        (key, getattr(customer, key)) for key in ("vat", "tax_code") if getattr(customer, key)
    ]
    return pairs


def same_addresses_key(customer: Customer) -> tuple:
    """Rows equal in this are one customer listed twice: the same mail goes to the same places,
    in the same language."""
    return (
        frozenset(a.casefold() for a in customer.emails),
        frozenset(a.casefold() for a in customer.pecs),
        customer.send,
        customer.prefer,
        customer.language,
    )


def _one(customers: tuple[Customer, ...]) -> Customer | None:
    return customers[0] if len(customers) == 1 else None


def describe(customer: Customer) -> str:
    """A customer as the admin finds it in the address book: code, name and line."""
    name = f" {customer.name}" if customer.name else ""
    return f"{customer.code}{name} (line {customer.line})"


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
    """Validate each row, then the rules across rows: a key on two rows is reported with both
    lines (and such documents are held as ambiguous), never resolved by the order of rows."""
    customers: list[Customer] = []
    problems: list[Problem] = []
    left_out_codes: dict[str, int] = {}
    seen: dict[tuple[str, str], Customer] = {}
    skipped = 0
    for row in rows:
        customer = _customer(row) if row.values else None
        if customer is not None:
            earlier = left_out_codes.get(_code_key(customer.code))
            if earlier is not None:
                # The row left out may be the real owner: its code must not reach another.
                message = f"code {customer.code} is already used on line {earlier} (a row left out)"
                row.problem("code", message)
        code = row.values.get("code")
        if row.problems:
            skipped += 1
            if isinstance(code, str) and code.strip():
                left_out_codes.setdefault(_code_key(code), row.line)
            who = f"customer {code.strip()}" if isinstance(code, str) and code.strip() else "row"
            row.problems.sort(key=lambda p: p.line or 0)
            problems += [
                Problem(p.line, p.key, f"{p.message} ({who} left out)") for p in row.problems
            ]
        elif customer is not None:
            customers.append(customer)
            problems += _shared_keys(row, customer, seen)
    problems.sort(key=lambda p: p.line or 0)
    return AddressBook(customers, problems, skipped)


def _shared_keys(row: Row, customer: Customer, seen: dict[tuple[str, str], Customer]):
    """A problem for each key of `customer` that an earlier row already has."""
    for key, value in keys_of(customer):
        other = seen.setdefault((key, value), customer)
        if other is customer:
            continue
        shown = customer.code if key == "code" else value
        whose = f"{other.code} {other.name}".strip()
        what = f"{_KEY_LABELS[key]} {shown} is already used on line {other.line} ({whose})"
        if same_addresses_key(other) == same_addresses_key(customer):
            outcome = "the same addresses, so they count as one customer"
        else:
            outcome = "documents identified by it are held as ambiguous until one row is corrected"
        yield Problem(row.lines.get(key, row.line), row.keys.get(key, key), f"{what}: {outcome}")


def _customer(row: Row) -> Customer | None:
    """Build the customer of `row`, or record on the row what is wrong with it."""
    parsed: dict[str, Any] = {}
    for name, parse in PARSERS.items():
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
