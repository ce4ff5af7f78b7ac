"""The text part and the attachment heads written directly (or remembered) are the bytes the
stdlib writes: compared over a seeded random corpus and hand-picked edge cases, counting that
both the shortcut and the stdlib were taken."""

from __future__ import annotations

import random

import pytest

from invoice_mailer.delivery import headerfold as fold
from invoice_mailer.delivery import mimeparts
from invoice_mailer.delivery.messagetext import compose_text, safe_filename

SPECIALS = "()<>@,;:\\\".[]=?_-'/!#$%&*+^`{|}~ \t"
SIGNATURES = ["", "--\nRossi S.r.l. - Amministrazione\n", "-- \nSocietà Però\n", "\n\n--", "  \n"]
EDGE_BODIES = [
    "",
    "\n",
    "Gentile cliente,\nin allegato la fattura.\n",
    "Gentile Società Però,\nè allegata la fattura.\n",
    "x" * 78,
    "x" * 79,
    "x" * 78 + "\n" + "y" * 79,
    "From the office\n.\n..\n",
    "tab\tand trailing space \n",
    "Vecchio\r\nWindows\rMac\n",
    "controls \x00\x1b[31m\x7f\x85\u2028 gone\n",
    "riga\n" * 2000,  # longer than what is remembered
    "=_ looks like a boundary\n--\n",
    "€" * 100,
]


def random_body(rng: random.Random) -> str:
    pieces = ["Gentile cliente,", "x" * 78, "x" * 79, "-- ", "From x", ".", "", "Società"]
    pool = "abcXYZ0129 " * 4 + SPECIALS + "èà€\r\x0b\x0c\x1c\x85"
    lines = []
    for _ in range(rng.randint(0, 14)):
        if rng.random() < 0.5:
            lines.append(rng.choice(pieces))
        else:
            lines.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 90))))
    return "\n".join(lines) + rng.choice(["", "\n", "\n\n"])


def test_text_parts_are_the_bytes_the_stdlib_writes():
    rng = random.Random(5)
    cases = [(body, signature) for body in EDGE_BODIES for signature in SIGNATURES]
    cases += [(random_body(rng), rng.choice(SIGNATURES)) for _ in range(2000)]
    seven_bit = 0
    for body, signature in cases:
        text = compose_text(body, signature)
        expected = mimeparts.stdlib_text_part(text)
        assert mimeparts.text_part(body, signature) == expected, (body, signature)
        assert mimeparts.text_part(body, signature) == expected, (body, signature)  # remembered
        seven_bit += b"Content-Transfer-Encoding: 7bit\r\n" in expected
    assert 200 <= seven_bit <= len(cases) - 200


def random_name(rng: random.Random) -> str:
    pool = "abcXYZ0129_" * 3 + SPECIALS + "èà€\u202e/\r"
    name = "".join(rng.choice(pool) for _ in range(rng.randint(0, 60)))
    if rng.random() < 0.4:
        name = f"Fattura_{rng.randint(1, 99999)}_2026_C{rng.randint(1, 999):03d}.pdf"
    if rng.random() < 0.1:
        name = name[:5] + "=?" + name[5:]
    return name


@pytest.mark.parametrize("kind", ["pdf", "xml", "p7m"])
def test_attachment_heads_are_the_bytes_the_stdlib_writes(kind):
    rng = random.Random(6)
    names = [
        "Fattura_123_2026_C042.pdf",
        "IT01234567890_FPR12345.xml.p7m",
        "Fattura 1 (copia).pdf",
        "Fattura_Società_1.pdf",
        "x" * 34 + ".pdf",
        "x" * 200,
        "a=?b.pdf",
        "Fattura_Societ\udce0.pdf",
    ]
    names += [random_name(rng) for _ in range(1500)]
    direct = 0
    for raw in names:
        name = safe_filename(raw)  # what the message builder gives it
        expected = mimeparts.stdlib_attachment_head(kind, name)
        assert mimeparts.attachment_head(kind, name) == expected, name
        direct += fold.disposition_line(name) is not None
    assert 200 <= direct <= len(names) - 200
