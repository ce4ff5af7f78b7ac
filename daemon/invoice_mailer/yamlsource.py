"""YAML read with the line of every key, and the value parsers a config file needs.

Kept apart from config.py so that the address book (YAML form) reports lines the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, permission_advice
from .netnames import domain_problem, host_problem

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


class Invalid(ValueError):
    """A value that does not fit; the message says what was expected."""


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """Parse a YAML file; return the data and the line of every dotted key.

    Raises Invalid with a one-line reason for unreadable files and syntax errors.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except IsADirectoryError:
        raise Invalid("is a directory, not a file") from None
    except FileNotFoundError:
        raise Invalid("does not exist") from None
    except PermissionError:
        raise Invalid(f"cannot be read: permission denied; {permission_advice()}") from None
    except UnicodeDecodeError as exc:
        raise Invalid(f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise Invalid(f"cannot be read ({exc.strerror})") from None
    try:
        node, data = _compose_and_construct(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise Invalid(f"{where}{_plain_words(exc)}") from None
    except yaml.YAMLError as exc:
        raise Invalid(f"YAML error: {exc}") from None
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        _index_lines(node, "", lines, duplicates)
    if duplicates:
        raise Invalid("; ".join(str(p) for p in duplicates))
    return data, lines


MAX_DEPTH = 20  # the config needs 4 levels, an address book 4: deeper is a mistake or an attack


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and deep nesting while composing.

    Refused at the parser level, an alias bomb ("billion laughs") or a recursive alias is never
    expanded, and no recursion can go deeper than MAX_DEPTH.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) and aliases (*name) are not allowed here: "
                "write each value out in full", event.start_mark,
            )  # fmt: skip
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """One pass: the node tree (for line numbers) and the data built from that same tree."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


# PyYAML's wording, by a fragment of its `problem`, and what an admin should read instead.
_PLAIN_WORDS = (
    ("found character '\\t'", "tab characters are not allowed for indentation: use spaces"),
    (
        "mapping values are not allowed",
        "unexpected ':' here: put quotes around a value that contains ': ', and check that the "
        "line above is a complete 'key: value'",
    ),
    (
        "expected <block end>",
        "the indentation does not line up with the lines above: indent the keys of one section "
        "by the same number of spaces",
    ),
    ("could not find expected ':'", "expected 'key: value' here (a ':' is missing)"),
    ("expected ',' or ']'", "a list opened with '[' is not closed with ']'"),
    ("expected ',' or '}'", "a mapping opened with '{' is not closed with '}'"),
    ("found unexpected end of stream", "a quote opened here or above is never closed"),
    (
        "found unknown escape character",
        "unknown escape in a double-quoted value: use single quotes (e.g. for Windows paths), "
        "or write \\\\ for a backslash",
    ),
    ("that cannot start any token", "this character cannot start a value: put the value in quotes"),
    ("could not determine a constructor", "tags (!!name) are not allowed here"),
)


def _plain_words(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or ""
    for fragment, words in _PLAIN_WORDS:
        if fragment in problem:
            return words
    if problem.startswith(("anchors", "nested more")):
        return problem
    return f"YAML syntax error: {problem}"


def _index_lines(node: yaml.Node, prefix: str, lines: dict[str, int], dups: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            if key in lines:
                dups.append(Problem(key_node.start_mark.line + 1, key, "key given twice"))
            lines[key] = key_node.start_mark.line + 1
            _index_lines(value_node, key + ".", lines, dups)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{prefix.rstrip('.')}[{index}]"
            lines[key] = item.start_mark.line + 1
            _index_lines(item, key + ".", lines, dups)


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
    if not raw.isprintable():
        raise Invalid(f"expected one e-mail address like name@example.it, got {raw!r}")
    local, _, domain = raw.partition("@")
    probe = _NON_ASCII.sub("a", local) + "@" + domain  # the stdlib refuses any UTF-8 name
    try:
        address = Address(addr_spec=probe)
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
