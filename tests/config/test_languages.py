"""Language codes as an office writes them (the Lingua column, customers.language): ISO 639-1,
and a sentence that says what to write instead of anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invoice_mailer.config.languages import LANGUAGE_NAMES, NUMERIC_DATES, describe, language_code
from invoice_mailer.config.yamlread import Invalid

ISO_CODES = Path("/usr/share/iso-codes/json/iso_639-2.json")


@pytest.mark.parametrize(
    ("written", "code"), [("de", "de"), ("DE", "de"), (" en ", "en"), ("It", "it"), ("zu", "zu")]
)
def test_two_letter_codes_in_any_case(written, code):
    assert language_code(written) == code


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("Inglese", "; English is en"),
        ("Deutsch", "; German is de"),
        ("french", "; French is fr"),
        ("en-GB", "; write en, the language alone (without the country)"),
        ("pt_BR", "; write pt, the language alone (without the country)"),
        ("xx", " (it, en, de, fr, es, …)"),
        ("eng", " (it, en, de, fr, es, …)"),  # ISO 639-2 is three letters: not this one
        ("", " (it, en, de, fr, es, …)"),
    ],
)
def test_anything_else_is_refused_with_what_to_write(written, hint):
    with pytest.raises(Invalid) as caught:
        language_code(written)
    expected = f"expected a two-letter ISO 639-1 language code, got {written!r}{hint}"
    assert str(caught.value) == expected


@pytest.mark.parametrize("value", [True, None, ["de"], {"de": 1}, 12])
def test_values_that_are_not_text_are_refused(value):
    with pytest.raises(Invalid, match="two-letter ISO 639-1"):
        language_code(value)


def test_a_hostile_cell_is_shown_shortened():
    with pytest.raises(Invalid) as caught:
        language_code("A" * 10_000)
    assert len(str(caught.value)) < 150


@pytest.mark.skipif(not ISO_CODES.exists(), reason="Debian's iso-codes is not installed")
def test_the_codes_are_iso_639_1_as_debian_lists_them():
    entries = json.loads(ISO_CODES.read_text())["639-2"]
    assert set(LANGUAGE_NAMES) == {entry["alpha_2"] for entry in entries if "alpha_2" in entry}


def test_every_numeric_date_layout_is_for_a_real_language():
    assert set(NUMERIC_DATES) <= set(LANGUAGE_NAMES)
    assert describe("de") == "de (German)"
