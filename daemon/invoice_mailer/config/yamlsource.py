"""The value parsers a config file needs, and a Reader that walks YAML collecting problems.

Kept apart from config/load.py so that the address book (YAML form) reports lines the same way;
the file itself is read by yamlread.py (re-exported here).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from invoice_mailer.config.netnames import domain_problem, host_problem
from invoice_mailer.config.yamlread import Invalid
from invoice_mailer.errors import Problem

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class Reader:
    """Walks one mapping of a YAML document, collecting problems instead of stopping at one."""

    def __init__(self, data: Any, lines: dict[str, int], problems: list[Problem], path: str = ""):
        self.lines = lines
        self.problems = problems
        self.path = path
        self.taken: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(path, f"expected a mapping of keys, got {_describe(data)}")
            data = {}
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def line(self, dotted: str) -> int | None:
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            dotted = dotted.rpartition(".")[0]
        return None

    def problem(self, dotted: str, message: str) -> None:
        self.problems.append(Problem(self.line(dotted), dotted, message))

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str) -> Any:
        self.taken.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Reader:
        self.taken.add(name)
        return Reader(self.data.get(name), self.lines, self.problems, self.key(name))

    def take(self, name: str, parse: Callable[[Any], Any], default: Any, required: bool = False):
        """The parsed value of `name`, or `default` (recording a problem) when it does not fit."""
        self.taken.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                self.problem(self.key(name), "is required")
            return default
        try:
            return parse(self.data[name])
        except Invalid as exc:
            self.problem(self.key(name), str(exc))
            return default

    def finish(self) -> None:
        """Report every key nobody asked for, with the closest valid name."""
        known = sorted(self.taken)
        for name in self.data:
            if name in self.taken:
                continue
            hint = difflib.get_close_matches(str(name), known, n=1)
            advice = f"did you mean '{hint[0]}'?" if hint else f"valid keys: {', '.join(known)}"
            self.problem(self.key(str(name)), f"unknown key ({advice})")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(str(value)) if not isinstance(value, str) else repr(value)


def duration(value: Any) -> float:
    """'30s', '0.5s', '10m', '2h', '5d' or a bare number of seconds."""
    if isinstance(value, bool):
        raise Invalid(f"expected a duration like 30s, 10m, 2h or 5d, got {_describe(value)}")
    if isinstance(value, int | float):
        if value < 0:
            raise Invalid(f"expected a duration that is not negative, got {value}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise Invalid(f"expected a duration like 30s, 10m, 2h or 5d, got {_describe(value)}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def size(value: Any) -> int:
    """'25MB', '512KB', '1GiB' or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(str(value)) if not isinstance(value, bool) else None
    if not match or float(match.group(1)) <= 0:
        raise Invalid(f"expected a size like 25MB or 512KB, got {_describe(value)}")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            top = f" to {high}" if high is not None else " or more"
            raise Invalid(f"expected a whole number from {low}{top}, got {_describe(value)}")
        if value < low or (high is not None and value > high):
            top = f" to {high}" if high is not None else " or more"
            raise Invalid(f"expected a whole number from {low}{top}, got {value}")
        return value

    return parse


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {_describe(value)}")
    return value


def text(value: Any) -> str:
    if isinstance(value, dict | list | bool):
        raise Invalid(f"expected text, got {_describe(value)}")
    return str(value)


def single_line(value: Any) -> str:
    """Text that may reach a mail header: CR and LF are refused here, not stripped later."""
    result = text(value)
    if "\r" in result or "\n" in result:
        raise Invalid("must be on one line (it may end up in a mail header)")
    return result


def choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        word = str(value).lower() if not isinstance(value, bool) else _describe(value)
        if word not in options:
            raise Invalid(f"expected one of {', '.join(options)}, got {_describe(value)}")
        return word

    return parse


def email_address(value: Any) -> str:
    """An address as RFC 5322 addr-spec, checked by the stdlib's header registry."""
    raw = text(value).strip()
    return check_address(raw)


def check_address(raw: str) -> str:
    """Return `raw` when it is one plain mailbox address; raise Invalid otherwise.

    A non-ASCII name before the @ passes (a server with SMTPUTF8 takes it; `check` warns).
    """
    if any(ch in raw for ch in "\r\n\t <>,;\"'()") or raw.count("@") != 1:
        raise Invalid(f"expected one e-mail address like name@example.it, got {raw!r}")
    # A UTF-8 name before the @ (RFC 6531) is checked through an ASCII stand-in: the stdlib
    # refuses it, and it can be sent where the server offers SMTPUTF8 (delivery/smtp/envelope.py).
    if not raw.isprintable():
        raise Invalid(f"expected one e-mail address like name@example.it, got {raw!r}")
    local, _, domain = raw.rpartition("@")
    try:
        address = Address(
            addr_spec="".join(c if c.isascii() else "u" for c in local) + "@" + domain
        )
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise Invalid(f"expected one e-mail address like name@example.it, got {raw!r}") from exc
    if not address.username or "." not in address.domain:
        raise Invalid(f"expected one e-mail address like name@example.it, got {raw!r}")
    problem = domain_problem(address.domain)
    if problem:
        raise Invalid(f"{raw!r} can never be sent: {problem}")
    return raw


def host(value: Any) -> str:
    """A host name (IDNA-encodable, as the resolver will need it) or an IP address."""
    name = single_line(value).strip()
    problem = host_problem(name)
    if problem:
        raise Invalid(f"expected a host name like smtp.example.it or an IP address: {problem}")
    return name


def listing(item: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """A list of items, or a single item standing for a list of one."""

    def parse(value: Any) -> tuple:
        values = value if isinstance(value, list) else [value]
        return tuple(item(v) for v in values)

    return parse


def path(value: Any) -> Path:
    return Path(text(value)).expanduser()
