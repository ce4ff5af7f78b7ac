"""The words of a message, made safe before they are written: header text on one line, a
Subject of bounded length, attachment names without paths or tricks, configured templates
filled without tracebacks, and the body with its signature.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping

from invoice_mailer.config.checks import format_spec_problem
from invoice_mailer.errors import InvoiceMailerError

MAX_FILENAME = 200
# A subject longer than this is cut (with "…"): folding a header costs more than linear time
# in its longest word, and no mail client shows more. Document fields are bounded at intake.
MAX_SUBJECT = 200

# \s also covers \v, \f, \x1c-\x1e, \x85, \u2028, \u2029: all that str.splitlines() breaks on.
_BREAKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")  # undecodable bytes of a file name (surrogateescape)
_BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # "Fattura\u202efdp.exe" tricks
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # NUL, escapes: servers refuse them
_RESERVED = re.compile(r'[<>:"|?*]')  # names Windows refuses to save
_EXTENSION = re.compile(r"(\.xml\.p7m|\.[^.]{1,10})$", re.IGNORECASE)


def render(template: str, fields: Mapping[str, object]) -> str:
    """Fill a configured template; a mistake in it becomes a sentence, not a traceback."""
    values = {name: str(value) for name, value in fields.items()}
    try:
        for _literal, name, spec, _conversion in string.Formatter().parse(template):
            if name is not None and (not name or name[0].isdigit() or re.search(r"\._", name)):
                raise ValueError(f"field {{{name}}} is not allowed")
            if spec and (problem := format_spec_problem(spec)):
                raise ValueError(problem)
        return template.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
        reason = f"unknown field {{{exc.args[0]}}}" if isinstance(exc, KeyError) else str(exc)
        raise InvoiceMailerError(f"template {template!r} cannot be used: {reason}") from None


def header_text(value: str) -> str:
    """One line of text for a header (Subject, display names): no break can reach the wire.

    "=?" is broken up: the email package decodes RFC 2047 encoded words in the values it is
    given, and Python before 3.11.10 then writes the line breaks they hide (CVE-2024-6923).
    """
    text = _BREAKS.sub(" ", _SURROGATES.sub("\ufffd", str(value))).strip()
    return text.replace("=?", "= ?")


def subject_text(value: str) -> str:
    """The Subject: one line (header_text), at most MAX_SUBJECT characters."""
    text = header_text(value)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1].rstrip() + "…"


def safe_filename(name: str) -> str:
    """The attachment name the recipient sees and saves: no path, no controls, never empty."""
    name = _SURROGATES.sub("_", str(name))
    name = _BIDI.sub("", unicodedata.normalize("NFC", name))
    name = _RESERVED.sub("_", name.replace("/", "-").replace("\\", "-"))
    name = header_text(name).strip(" .")  # a leading dot hides the file, a trailing one vanishes
    if not name:
        return "documento"
    if len(name) > MAX_FILENAME:
        extension = match.group() if (match := _EXTENSION.search(name)) else ""
        name = name[: MAX_FILENAME - len(extension)].rstrip(" .") + extension
    return name


def compose_text(body: str, signature: str) -> str:
    """The body, then the signature after one blank line; newlines as \\n, ending in one."""
    text, signature = _plain_text(body), _plain_text(signature)
    # RFC 3676's separator is "-- " with its space, which editors like to strip: put it back,
    # so mail programs recognise (and leave out of replies) the signature.
    signature = re.sub(r"\A(\n*)--[ \t]*(?=\n|\Z)", r"\1-- ", signature)
    if signature.strip():
        text = text.rstrip("\n") + "\n\n" + signature.strip("\n")
    return text if text.endswith("\n") else text + "\n"


def _plain_text(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_CONTROLS.sub("", _SURROGATES.sub("\ufffd", value))
