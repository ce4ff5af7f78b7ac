"""Finding a document's customer in the address book: the matching order of docs/DESIGN.md.

First hit wins: the file-name pattern's groups (customer code, vat, tax_code, email), then the
FatturaPA customer's P.IVA, then its Codice Fiscale, and last the XML's PECDestinatario when
customers.use_xml_pec allows it. A key that names two customers is never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from invoice_mailer.addressbook.book import AddressBook, Customer
from invoice_mailer.addressbook.fields import normalise_tax_code, normalise_vat
from invoice_mailer.config.model import Config
from invoice_mailer.config.yamlread import Invalid
from invoice_mailer.config.yamlsource import check_address

NOTHING_TO_LOOK_UP = (
    "nothing: the file name does not match customers.filename and the content names no customer"
)


@dataclass(frozen=True)
class Match:
    """Who a document goes to, and what was looked up to find that (for the held reason)."""

    customer: Customer | None
    addresses: tuple[str, ...]
    looked_up: str  # e.g. "code C042", "P.IVA IT01234567890", for the admin
    ambiguous: tuple[Customer, ...] = ()  # the key names several customers: never guessed


def find_customer(config: Config, book: AddressBook, facts: dict[str, Any]) -> Match:
    """The matching order of docs/DESIGN.md; the first key that finds a customer or an address wins.
    A key that names two customers (with different addresses) ends the search: ambiguous."""
    use_pec = config.customers.use_xml_pec
    by_code, by_vat = partial(book.find, "code"), partial(book.find, "vat")
    lookups: list[tuple[str, str | None, Callable[[str], tuple[Customer, ...]] | None]] = [
        ("code", _strip(facts.get("customer")), by_code),
        ("P.IVA", _vat(facts.get("vat")), by_vat),
        ("Codice Fiscale", _tax_code(facts.get("tax_code")), _by_tax_code_or_vat(book)),
        ("e-mail", _strip(facts.get("email")), None),  # the address itself is the hit
        ("P.IVA", _vat(facts.get("xml_vat")), by_vat),
        ("Codice Fiscale", _tax_code(facts.get("xml_tax_code")), _by_tax_code_or_vat(book)),
        ("PECDestinatario", _strip(facts.get("xml_pec")) if use_pec else None, None),
    ]
    tried: list[str] = []
    for label, value, lookup in lookups:
        if not value:
            continue
        if lookup is None:
            try:
                address = check_address(value)
            except Invalid:
                tried.append(f"{label} {value} (not a valid address)")
                continue
            return Match(book.by_email(address), (address,), f"{label} {address}")
        tried.append(f"{label} {value}")
        found = lookup(value)
        if len(found) > 1:
            return Match(None, (), tried[-1], ambiguous=found)
        if found:
            return Match(found[0], found[0].addresses(config.customers.prefer), tried[-1])
    if facts.get("xml_pec") and not use_pec:
        tried.append(f"PECDestinatario {facts['xml_pec']} (not used: customers.use_xml_pec is off)")
    return Match(None, (), ", ".join(tried) or NOTHING_TO_LOOK_UP)


def _strip(value: str | None) -> str | None:
    return value.strip() if value else None


def _vat(value: str | None) -> str | None:  # the form the book keys on, shown to the admin
    return normalise_vat(value) if value else None


def _tax_code(value: str | None) -> str | None:
    return normalise_tax_code(value) if value else None


def _by_tax_code_or_vat(book: AddressBook) -> Callable[[str], tuple[Customer, ...]]:
    """A company's Codice Fiscale is usually its P.IVA's 11 digits: try both."""

    def lookup(value: str) -> tuple[Customer, ...]:
        found = book.find("tax_code", value)
        if not found and value.isdigit() and len(value) == 11:
            found = book.find("vat", value)
        return found

    return lookup
