"""Hostile XML for the tests: entity bombs, XXE and external DTDs (each must be refused
before anything expands or is read)."""

from __future__ import annotations

ROOT = "FatturaElettronica"

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<lolz>&lol9;</lolz>\n"
).encode()

QUADRATIC_BLOWUP = (
    f'<?xml version="1.0"?>\n<!DOCTYPE kaboom [<!ENTITY a "{"A" * 50_000}">]>\n'
    f"<kaboom>{'&a;' * 50_000}</kaboom>\n"
).encode()


def xxe(target: str = "/etc/passwd") -> bytes:
    """An invoice whose Numero would be the content of `target` if the entity were read."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {ROOT} [<!ENTITY xxe SYSTEM "file://{target}">]>\n'
        f"<{ROOT}><Numero>&xxe;</Numero></{ROOT}>\n"
    ).encode()


XXE = xxe()


def external_dtd(url: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {ROOT} SYSTEM "{url}">\n<{ROOT}>x</{ROOT}>\n'
    ).encode()
