"""Reading a YAML file safely: the data, the line of every key, and plain-word errors.

Hostile structure (aliases, anchors, deep nesting) is refused while parsing, so nothing is
ever expanded; the config and the YAML address book both read through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from invoice_mailer.errors import Problem, permission_advice


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

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
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
