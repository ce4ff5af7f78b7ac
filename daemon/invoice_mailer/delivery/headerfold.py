"""Header lines as the stdlib's email policy folds them, written directly where the line is
known to come out of the stdlib unchanged ("Name: value" on one line), since parsing and
refolding every header costs most of a message's build.

Each shortcut takes only values the stdlib writes back verbatim: printable ASCII made of the
tokens named below, no "=?" (the parser decodes RFC 2047 words), one line of at most
max_line_length. Anything else (non-ASCII, folding, quoting, comments) goes to the stdlib, and
tests/delivery/test_headerfold.py compares both over a varied corpus.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime
from email import policy, utils
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, MIMEPart

from invoice_mailer.addresses import needs_smtputf8
from invoice_mailer.delivery.messagetext import header_text


class _CachedHeaderRegistry(HeaderRegistry):
    """The stdlib builds a new header class with type() on every lookup; a month-end burst
    builds thousands of messages, so each class is made once (same classes, same bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]


# cte_type="7bit": the text part is never sent as raw 8-bit, which some relays still mangle.
POLICY = policy.SMTP.clone(cte_type="7bit", header_factory=_CachedHeaderRegistry())
UTF8_POLICY = POLICY.clone(utf8=True)  # headers with a UTF-8 address, sent with SMTPUTF8
CRLF = b"\r\n"
MAX_LINE = POLICY.max_line_length or 0  # 78 in both policies (0: no line is a shortcut)

# The shapes of value the stdlib writes back as they are, on one line: RFC 5322 dot-atoms of
# atext, printable ASCII words with single spaces. Bare addresses, text, Message-IDs as
# new_message_id makes them, our boundaries, and short file names in a quoted-string.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_WORDS = r"[!-~]+(?: [!-~]+)*"
_QUOTABLE_WORDS = r"[!#-\[\]-~]+(?: [!#-\[\]-~]+)*"  # no quote, no backslash
ADDRESSES = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}(?:, {_DOT_ATOM}@{_DOT_ATOM})*")
TEXT = re.compile(_WORDS)
MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
MULTIPART = re.compile(r'multipart/mixed; boundary="=_[0-9a-f]{32}"')
DISPOSITION = re.compile(rf'attachment; filename="{_QUOTABLE_WORDS}"')


def plain_line(name: str, value: str, shape: re.Pattern[str]) -> bytes | None:
    """The header line as the stdlib would write it, when `value` has `shape` and no "=?"
    (which its parser decodes as an RFC 2047 word) and fits on one line; else None."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE and shape.fullmatch(value) and "=?" not in value:
        return line.encode("ascii") + CRLF
    return None


def stdlib_line(name: str, value: object, utf8: bool = False) -> bytes:
    """The header as the stdlib writes it: what EmailMessage[name] = value then folds."""
    chosen = UTF8_POLICY if utf8 else POLICY
    return chosen.fold_binary(name, chosen.header_store_parse(name, value)[1])


@functools.lru_cache(maxsize=64)
def constant_line(name: str, value: str, utf8: bool = False) -> bytes:
    """A header whose value never changes (MIME-Version, X-Mailer, a part's Content-Type)."""
    return stdlib_line(name, value, utf8)


def from_value(sender_name: str, sender: str) -> Address | str:
    """What the stdlib is given for From (the sender already checked)."""
    name = header_text(sender_name)
    if needs_smtputf8(sender):
        # A UTF-8 name before the @ is written as UTF-8 (RFC 6532); the stdlib's Address
        # objects refuse it, its parser of header text takes it.
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{sender}>' if name else sender
    return Address(display_name=name, addr_spec=sender)


def addresses_value(addresses: Sequence[str], utf8: bool) -> list[Address] | str:
    """What the stdlib is given for To or Cc (addresses already checked)."""
    return ", ".join(addresses) if utf8 else [Address(addr_spec=a) for a in addresses]


@functools.lru_cache(maxsize=64)
def from_line(sender_name: str, sender: str, utf8: bool) -> bytes:
    """From, through the stdlib once per sender: the same few head every message."""
    return stdlib_line("From", from_value(sender_name, sender), utf8)


def address_line(name: str, addresses: Sequence[str], utf8: bool) -> bytes:
    """To or Cc: bare addresses (already checked and in their wire form)."""
    joined = ", ".join(addresses)
    if line := plain_line(name, joined, ADDRESSES):
        return line
    return stdlib_line(name, addresses_value(addresses, utf8), utf8)


def text_line(name: str, value: str, utf8: bool) -> bytes:
    """An unstructured header (Subject)."""
    return plain_line(name, value, TEXT) or stdlib_line(name, value, utf8)


def date_line(date: datetime, utf8: bool) -> bytes:
    """Date: the stdlib writes utils.format_datetime of it, as unstructured text."""
    return plain_line("Date", utils.format_datetime(date), TEXT) or stdlib_line("Date", date, utf8)


def message_id_line(message_id: str, utf8: bool) -> bytes:
    """Message-ID."""
    line = plain_line("Message-ID", message_id, MESSAGE_ID)
    return line or stdlib_line("Message-ID", message_id, utf8)


def multipart_line(boundary: str, utf8: bool) -> bytes:
    """Content-Type of the whole message."""
    value = f'multipart/mixed; boundary="{boundary}"'
    return plain_line("Content-Type", value, MULTIPART) or stdlib_line("Content-Type", value, utf8)


def disposition_line(filename: str) -> bytes | None:
    """An attachment's Content-Disposition, as add_header(..., filename=filename) writes it,
    for a short plain ASCII name (None for any other: see mimeparts)."""
    return plain_line("Content-Disposition", f'attachment; filename="{filename}"', DISPOSITION)


def stdlib_lines(message: EmailMessage | MIMEPart) -> bytes:
    """All the headers of a message or part, as its as_bytes writes them."""
    return b"".join(message.policy.fold_binary(name, value) for name, value in message.items())
