"""What `check` finds: every problem of the config, the key file and the address book at once,
and the warnings about what may not work, grouped by the file they are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from invoice_mailer.config import credentials
from invoice_mailer.config.checks import smtputf8_warning
from invoice_mailer.config.load import read_config
from invoice_mailer.config.model import Config
from invoice_mailer.config.netnames import non_ascii_local_part
from invoice_mailer.config.presetreport import preset_lines
from invoice_mailer.config.signincheck import check_sign_in, login_line
from invoice_mailer.config.templatelanguages import untemplated
from invoice_mailer.errors import ConfigError, Problem, SecretError

if TYPE_CHECKING:
    from invoice_mailer.addressbook.book import AddressBook, Customer


@dataclass
class Findings:
    """Problems (the service would refuse to start: exit 78) and warnings of one file."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def render(self) -> str:
        """As a ConfigError reads: the file, how many, then one indented line each."""
        lines = []
        for noun, items in (("problem", self.problems), ("warning", self.warnings)):
            if items:
                lines.append(f"{self.source}: {len(items)} {noun}{'s' if len(items) != 1 else ''}")
                lines += [f"  {item}" for item in items]
        return "\n".join(lines)


@dataclass
class Checkup:
    config: Config
    files: list[Findings]
    customers: str  # "12 customers (1 row skipped)", or "no address book"
    about: list[str] = field(default_factory=list)  # the provider preset and the login

    @property
    def failed(self) -> bool:
        return any(found.problems for found in self.files)


def check_all(path: Path) -> Checkup:
    """Check everything; raise ConfigError only when the config cannot be read or parsed."""
    config, problems, lines = read_config(path)
    found = Findings(str(path), problems, list(config.warnings))
    files = [found]
    if not any(p.key in ("smtp.password", "smtp.key_file") for p in problems):
        _check_key(config, found, lines.get("smtp.password"))
    if not any(p.key.startswith(("smtp.auth", "smtp.oauth", "smtp.key_file")) for p in problems):
        check_sign_in(config, found.problems, found.warnings, lines)
        found.problems.sort(key=lambda p: (p.line or 0, p.key))
    separate = config.receipts.imap.password != config.smtp.password
    imap_problem = any(p.key == "receipts.imap.password" for p in problems)
    if config.receipts.enabled and separate and not imap_problem:
        _check_imap_key(config, found, lines.get("receipts.imap.password"))
    customers = "no address book"
    book_path = config.customers.address_book
    if book_path is not None and not any(p.key == "customers.address_book" for p in problems):
        book, customers = _check_book(config, book_path)
        files.append(book)
    # A password in the config, or no login, needs no word; the other logins do.
    plain = config.smtp.auth != "xoauth2" and not config.smtp.password_command
    about = [*preset_lines(config), *([] if plain else [login_line(config)])]
    return Checkup(config, [f for f in files if f.problems or f.warnings], customers, about)


def _check_key(config: Config, found: Findings, line: int | None) -> None:
    """The key file and the token, reported with the config's line of smtp.password."""
    try:
        credentials.smtp_password(config.smtp)
    except SecretError as exc:
        found.problems.append(Problem(line, "smtp.password", str(exc)))
        found.problems.sort(key=lambda p: (p.line or 0, p.key))


def _check_imap_key(config: Config, found: Findings, line: int | None) -> None:
    """The mailbox's own enc: token, decrypted with the same key."""
    try:
        credentials.imap_password(config)
    except SecretError as exc:
        found.problems.append(Problem(line, "receipts.imap.password", str(exc)))
        found.problems.sort(key=lambda p: (p.line or 0, p.key))


def _check_book(config: Config, path: Path) -> tuple[Findings, str]:
    from invoice_mailer.addressbook.book import load_address_book
    from invoice_mailer.addressbook.files import heading_warnings

    found = Findings(str(path))
    csv = config.customers.csv
    try:
        book = load_address_book(path, csv)
    except ConfigError as exc:
        found.problems = exc.problems
        return found, "an unusable address book"
    if path.suffix.lower() == ".csv":
        found.warnings += heading_warnings(path, csv)
    found.warnings += book.problems  # rows left out, each with its reason
    found.warnings += _untemplated_languages(config, book)
    for customer in book:
        for address in (*customer.emails, *customer.pecs):
            if non_ascii_local_part(address):
                found.warnings.append(Problem(customer.line, "", smtputf8_warning(address)))
    found.warnings.sort(key=lambda p: p.line or 0)
    skipped = f" ({book.skipped} row{'s' if book.skipped != 1 else ''} skipped)"
    count = f"{len(book)} customer{'s' if len(book) != 1 else ''}"
    return found, count + (skipped if book.skipped else "")


def _untemplated_languages(config: Config, book: AddressBook) -> list[Problem]:
    """One warning per language of the book that has no templates: those customers get the
    Italian message. Said once, on the first row, with the customers it concerns."""
    rows: dict[str, list[Customer]] = {}
    for customer in book:
        if customer.language and not config.templates.has(customer.language):
            rows.setdefault(customer.language, []).append(customer)
    warnings = []
    for code, customers in rows.items():
        shown = ", ".join(f"{c.code} (line {c.line})" for c in customers[:5])
        more = f" and {len(customers) - 5} more" if len(customers) > 5 else ""
        whom = f"{shown}{more}"
        warnings.append(Problem(customers[0].line, "", untemplated(code, whom)))
    return warnings
