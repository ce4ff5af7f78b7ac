"""Every header line written directly is the line the stdlib writes: compared over a seeded
random corpus heavy in the characters that make the stdlib quote, encode or fold, and over
hand-picked edge cases. Each comparison also counts whether the shortcut was taken, so that
both branches are exercised (a corpus the shortcut never takes would prove nothing)."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import utils
from functools import partial
from typing import Any

import pytest

from invoice_mailer.addresses import new_message_id
from invoice_mailer.delivery import headerfold as fold

SPECIALS = "()<>@,;:\\\".[]=?_-'/!#$%&*+^`{|}~ \t"
NON_ASCII = "èàé€日\u00a0"
EDGE_TEXTS = [
    "",
    " ",
    "Fattura n. 123 del 02/03/2026",
    "Fattura n. 7 – Società",
    "x" * 69,  # "Subject: " + 69 = 78: the longest line that needs no folding
    "x" * 70,
    "a " * 34 + "b",
    "a " * 35 + "b",
    " leading",
    "trailing ",
    "two  spaces",
    "tab\there",
    "=?utf-8?q?hidden?=",
    "= ?utf-8?q?broken up?=",
    "Fattura =?",
    '"quoted" (comment) <angle> [square] a,b;c:d\\e',
    "?= =? ?=",
    "Fattura\r\nBcc: x@evil.test",
]


def corpus(seed: int, count: int, make: Callable[[random.Random], str]) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        yield make(rng)


def scrap(rng: random.Random, most: int, extra: str = "") -> str:
    """Random text, mostly letters and digits, often specials, sometimes an "=?" inside."""
    pool = "abcXYZ0129" * 3 + SPECIALS + extra
    text = "".join(rng.choice(pool) for _ in range(rng.randint(0, most)))
    if rng.random() < 0.1:
        cut = rng.randint(0, len(text))
        text = text[:cut] + "=?" + text[cut:]
    return text


def words(rng: random.Random, most: int) -> str:
    return " ".join(scrap(rng, 9).replace(" ", "") or "w" for _ in range(rng.randint(1, most)))


def random_text(rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return scrap(rng, 90, NON_ASCII)
    if choice == 1:
        return words(rng, 14)
    if choice == 2:
        return rng.choice([" ", "  ", "\t"]).join([words(rng, 3), words(rng, 3)])
    return f"Fattura n. {rng.randint(1, 99999)} del {rng.randint(1, 28):02d}/03/2026"


def random_address(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return scrap(rng, 12) + "@" + scrap(rng, 12)
    local = rng.choice(["mario", "a.b", "o'brien", "x+tag", "a_b", "{x}", "A-Z", "a=b?c"])
    if rng.random() < 0.2:
        local = rng.choice(['"q"', '"a b"', "=?u?q?x?=", "màrio", "a(b)", "a..b", ".a", "a."])
    domain = rng.choice(["pec.bianchi.it", "x.it", "xn--perch-fsa.it", "a_b.it", "[1.2.3.4]"])
    return f"{local}@{domain}"


def random_message_id(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return new_message_id(rng.choice(["f@pec.example.it", "f@a-b.example", "f@x.it"]))
    return f"<{scrap(rng, 30)}@{scrap(rng, 40)}>"


class Tally:
    """How many lines took the shortcut and how many went to the stdlib."""

    def __init__(self) -> None:
        self.direct = self.stdlib = 0

    def count(self, shortcut: bytes | None) -> None:
        if shortcut is None:
            self.stdlib += 1
        else:
            self.direct += 1

    def assert_both_branches(self, least: int) -> None:
        assert self.direct >= least and self.stdlib >= least, (self.direct, self.stdlib)


def stdlib_or_none(name: str, value: Callable[[], object], utf8: bool) -> bytes | None:
    """The stdlib's line, or None where the stdlib refuses the value."""
    try:
        return fold.stdlib_line(name, value(), utf8)
    except Exception:  # garbage in the corpus: the stdlib's parse errors are of every kind
        return None


def assert_written_as_the_stdlib(
    header: str,
    values: list[Any],
    stdlib_value: Callable[[Any], object],
    raw: Callable[[Any], str],
    shape: Any,
    line: Callable[[Any], bytes],
    utf8: bool,
) -> None:
    """For every value: the shortcut (`raw` text of the given shape) gives the stdlib's line or
    stands aside (None); the line the builder writes is always the stdlib's; and the corpus
    takes both branches, so the comparison is never vacuous."""
    tally = Tally()
    for value in values:
        expected = stdlib_or_none(header, partial(stdlib_value, value), utf8)
        shortcut = fold.plain_line(header, raw(value), shape)
        tally.count(shortcut)
        if expected is None:
            assert shortcut is None, value
            continue
        assert line(value) == expected, value
        assert shortcut in (None, expected), value
    tally.assert_both_branches(300)


@pytest.mark.parametrize("utf8", [False, True])
def test_subjects_are_written_as_the_stdlib_writes_them(utf8):
    texts = [*EDGE_TEXTS, *corpus(1, 3000, random_text)]
    assert_written_as_the_stdlib(
        "Subject", texts, str, str, fold.TEXT, lambda t: fold.text_line("Subject", t, utf8), utf8
    )


@pytest.mark.parametrize("utf8", [False, True])
def test_address_lists_are_written_as_the_stdlib_writes_them(utf8):
    rng = random.Random(2)
    lists = [["mario@pec.bianchi.it"], ["a@x.it", "b@y.it"], [f"c{i}@example.it" for i in range(6)]]
    lists += [[random_address(rng) for _ in range(rng.randint(1, 3))] for _ in range(3000)]
    assert_written_as_the_stdlib(
        "To",
        lists,
        lambda addresses: fold.addresses_value(addresses, utf8),
        ", ".join,
        fold.ADDRESSES,
        lambda addresses: fold.address_line("To", addresses, utf8),
        utf8,
    )


@pytest.mark.parametrize("utf8", [False, True])
def test_message_ids_are_written_as_the_stdlib_writes_them(utf8):
    edge = ["<a@b>", "<a.b@c.d>", "<a@[1.2.3.4]>", "<a@b@c>", '<"q"@x>', "<a(b)@c>", "<=?x@y>"]
    edge.append(f"<{'x' * 60}@example.it>")  # too long for one line
    assert_written_as_the_stdlib(
        "Message-ID",
        [*edge, *corpus(3, 3000, random_message_id)],
        str,
        str,
        fold.MESSAGE_ID,
        lambda message_id: fold.message_id_line(message_id, utf8),
        utf8,
    )


def test_dates_are_written_as_the_stdlib_writes_them():
    rng = random.Random(4)
    dates = [datetime.now(UTC).astimezone(), datetime(1, 1, 1, tzinfo=UTC)]
    for _ in range(2000):
        offset = timedelta(minutes=rng.randint(-23 * 60, 23 * 60), seconds=rng.choice([0, 30]))
        day = datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28))
        moment = day + timedelta(seconds=rng.randint(0, 86399), microseconds=rng.randint(0, 9))
        dates.append(moment.replace(tzinfo=timezone(offset)))
    for date in dates:
        for utf8 in (False, True):
            assert fold.date_line(date, utf8) == fold.stdlib_line("Date", date, utf8), date
        assert fold.plain_line("Date", utils.format_datetime(date), fold.TEXT), date


@pytest.mark.parametrize("utf8", [False, True])
def test_multipart_content_types_are_written_as_the_stdlib_writes_them(utf8):
    boundaries = ["=_" + secrets.token_hex(16) for _ in range(200)]
    boundaries += ["=_" + "A" * 32, "=_short", "plain", "=_" + "0" * 33]
    for boundary in boundaries:
        value = f'multipart/mixed; boundary="{boundary}"'
        expected = fold.stdlib_line("Content-Type", value, utf8)
        assert fold.multipart_line(boundary, utf8) == expected, boundary


def test_from_is_the_stdlibs_line_remembered():
    for name, sender in [
        ("Rossi S.r.l.", "fatture@pec.example.it"),
        ('Mario "Il Grande" Rossi, (Milano)', "fatture@example.it"),
        ("Società Cooperativa Però", "fatture@example.it"),
        ("Società", "fàtture@example.it"),
        ("", "fàtture@example.it"),
        ("x" * 120, "fatture@example.it"),
    ]:
        for utf8 in (False, True):
            expected = fold.stdlib_line("From", fold.from_value(name, sender), utf8)
            assert (
                fold.from_line(name, sender, utf8) == expected == fold.from_line(name, sender, utf8)
            )


def test_the_common_headers_take_the_shortcut():
    """What a month-end burst writes: plain subjects and addresses, our own ids and dates."""
    assert fold.plain_line("Subject", "Fattura n. 123 del 02/03/2026", fold.TEXT)
    assert fold.plain_line("To", "mario@pec.bianchi.it, amm@bianchi.it", fold.ADDRESSES)
    assert fold.plain_line("Message-ID", new_message_id("f@pec.example.it"), fold.MESSAGE_ID)
    assert fold.plain_line("Date", utils.format_datetime(datetime.now(UTC)), fold.TEXT)
    value = f'multipart/mixed; boundary="=_{secrets.token_hex(16)}"'
    assert fold.plain_line("Content-Type", value, fold.MULTIPART)
    assert fold.disposition_line("Fattura_123_2026_C042.pdf")


@pytest.mark.parametrize(
    "name, value, shape",
    [
        ("Subject", "Fattura n. 7 – Società", fold.TEXT),  # non-ASCII: an encoded word
        ("Subject", "Fattura " * 9 + "n. 1", fold.TEXT),  # folds
        ("Subject", "=?utf-8?q?x?=", fold.TEXT),  # the parser would decode it
        ("To", '"q"@x.it', fold.ADDRESSES),  # quoted local part
        ("To", "màrio@x.it", fold.ADDRESSES),  # SMTPUTF8
        ("To", ", ".join(f"copia{i}@example.it" for i in range(5)), fold.ADDRESSES),  # folds
        ("Content-Disposition", 'attachment; filename="Società.pdf"', fold.DISPOSITION),
        ("Content-Disposition", f'attachment; filename="{"F" * 40}.pdf"', fold.DISPOSITION),
    ],
)
def test_what_needs_quoting_encoding_or_folding_is_left_to_the_stdlib(name, value, shape):
    assert fold.plain_line(name, value, shape) is None
