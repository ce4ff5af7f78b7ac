"""The values this configuration's own keys take (a listen address, a clock time, a file-name
pattern, …): each parser returns the value as the config keeps it, or raises ys.Invalid with
the sentence the admin reads next to the key's line."""

from __future__ import annotations

import re
from typing import Any

from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.model import FILENAME_GROUPS


def imap_security(value: Any) -> str:
    word = ys.text(value).strip().lower()
    if word == "none":
        raise ys.Invalid(
            "the mailbox is never read in clear text: tls (port 993) or starttls (port 143)"
        )
    return ys.choice("tls", "starttls")(word)


def folder(value: Any) -> str:
    name = ys.single_line(value).strip()
    if not name:
        raise ys.Invalid("expected a folder name like INBOX or Ricevute")
    return name


def regex(value: Any) -> str:
    pattern = ys.text(value)
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ys.Invalid(f"not a valid regular expression: {exc}") from None
    unknown = set(compiled.groupindex) - set(FILENAME_GROUPS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ys.Invalid(
            f"unknown named group {names} (valid groups: {', '.join(FILENAME_GROUPS)})"
        )
    return pattern


def clock_time(value: Any) -> str:
    word = ys.text(value).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", word)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ys.Invalid(f'expected a time of day like "18:30", got {word!r}')
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def delimiter(value: Any) -> str:
    word = ys.text(value)
    if word != "auto" and len(word) != 1:
        raise ys.Invalid(f"expected auto or one character such as ';' or ',', got {word!r}")
    return word


def encoding(value: Any) -> str:
    import codecs

    word = ys.text(value).strip().lower()
    if word == "auto":
        return word
    try:
        codecs.lookup(word)
    except LookupError:
        raise ys.Invalid(f"expected auto, utf-8, utf-8-sig or cp1252, got {word!r}") from None
    return word


def listen(value: Any) -> str:
    """host:port, the host an IP address or a name ("[::1]:8080" for IPv6)."""
    word = ys.single_line(value).strip()
    host, _, port = word.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ys.Invalid(
            f"expected host:port like 127.0.0.1:8080 or 192.168.1.10:8080, got {word!r}"
        )
    ys.host(host.strip("[]"))
    return word


def web_users(value: Any) -> tuple[tuple[str, str], ...]:
    """name: hash, each hash as `invoice-mailer hash-password` prints it."""
    from invoice_mailer.office.passwords import hash_problem

    if not isinstance(value, dict):
        raise ys.Invalid(
            "expected a mapping of user names to hashes from `invoice-mailer hash-password`"
        )
    users, wrong = [], []
    for name, hashed in value.items():
        problem = hash_problem(hashed) if isinstance(hashed, str) else "not text"
        if problem or not str(name).strip():
            wrong.append(f"{name}: {problem or 'an empty name'}")
        users.append((str(name), str(hashed)))
    if wrong:
        raise ys.Invalid(
            "; ".join(wrong) + "; paste the line `invoice-mailer hash-password` prints"
        )
    return tuple(users)


def ip_address(value: Any) -> str:
    import ipaddress

    word = ys.single_line(value).strip()
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        raise ys.Invalid(f"expected the proxy's IP address like 127.0.0.1, got {word!r}") from None
