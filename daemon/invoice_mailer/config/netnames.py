"""Host names and mail domains as the network will take them: checked when the config or the
address book is read, so that a name the IDNA codec or DNS refuses never waits for run time.
"""

from __future__ import annotations

import ipaddress
import re
from encodings import idna

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def host_problem(host: str) -> str | None:
    """Why `host` cannot be connected to (a sentence), or None when it is a usable name or IP."""
    if not host.strip():
        return "is empty"
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(literal)
        return None
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", literal) or ":" in literal:
        return f"{host!r} is not a valid IP address"
    return domain_problem(host, "host name")


def domain_problem(domain: str, what: str = "domain") -> str | None:
    """Why `domain` cannot be encoded for DNS (IDNA, labels of 1 to 63, at most 253 in all)."""
    if domain.startswith("[") and domain.endswith("]"):
        try:
            ipaddress.ip_address(domain[1:-1].removeprefix("IPv6:"))
            return None
        except ValueError:
            return f"{domain!r} is not a valid IP address"
    labels = idna.dots.split(domain.removesuffix("."))
    ascii_labels = []
    for label in labels:
        if not label:
            return f"{domain!r} is not a valid {what}: an empty part between two dots"
        try:
            encoded = idna.ToASCII(label).decode("ascii")
        except UnicodeError:
            if len(label) > 63:
                return f"{domain!r} is not a valid {what}: a part is longer than 63 characters"
            return f"{domain!r} is not a valid {what}: {label!r} cannot be written in IDNA"
        if len(encoded) > 63:
            return f"{domain!r} is not a valid {what}: a part is longer than 63 characters"
        if not _LABEL.fullmatch(encoded):
            return (
                f"{domain!r} is not a valid {what}: {label!r} may hold only letters, digits and "
                "'-' (not at the start or the end)"
            )
        ascii_labels.append(encoded)
    if len(".".join(ascii_labels)) > 253:
        return f"{domain!r} is not a valid {what}: longer than 253 characters"
    return None


def non_ascii_local_part(address: str) -> bool:
    """True when the part before the @ needs SMTPUTF8, which most providers (and PEC) lack."""
    return not address.rpartition("@")[0].isascii()
