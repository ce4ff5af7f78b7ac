"""templates.LANG and customers.language as the admin writes them: English built in, any other
language added in YAML, today's Italian keys unchanged, every mistake at once with its line."""

from __future__ import annotations

import pytest

from invoice_mailer.config.load import load_config, read_config
from invoice_mailer.config.texts import ENGLISH
from invoice_mailer.errors import ConfigError
from tests.support.configs import write_config

GERMAN = {
    "customer_subject": "{doc} Nr. {number} vom {date}",
    "customer_body": "Sehr geehrte Damen und Herren,\nanbei {doc} Nr. {number} vom {date}.\n",
    "signature": "-- \nRossi S.r.l. - Buchhaltung",
    "doc_names": {"Fattura": "Rechnung", "Nota di credito": "Gutschrift"},
}


def problems_of(tmp_path, text: str) -> list[str]:
    """The problems of a config whose templates: (and more) is `text`, as `check` lists them."""
    path = write_config(tmp_path)
    path.write_text(path.read_text() + text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(problem) for problem in caught.value.problems]


def test_without_a_word_of_config_italian_is_the_default_and_english_is_built_in(tmp_path):
    config = load_config(write_config(tmp_path))
    assert (config.customers.language, config.customers.foreign_language) == ("it", "en")
    assert config.templates.for_language("en") == ENGLISH
    italian = config.templates.for_language("it")
    assert italian.customer_subject == "{doc} n. {number} del {date}"
    assert italian.signature is None  # the one top-level signature
    assert config.templates.for_language(None) == italian
    assert config.templates.has("en") and config.templates.has("it")
    assert not config.templates.has("de")


def test_the_existing_italian_keys_keep_working_and_serve_languages_without_templates(tmp_path):
    italian = {"customer_subject": "Ecco {doc} {number}", "customer_body": "Salve.\n"}
    config = load_config(write_config(tmp_path, templates=italian))
    for code in ("it", "pl", None):
        assert config.templates.for_language(code).customer_subject == "Ecco {doc} {number}"
    assert config.templates.for_language("en").customer_subject == ENGLISH.customer_subject


def test_an_added_language_and_an_english_override(tmp_path):
    templates = {"de": GERMAN, "en": {"customer_subject": "Your {doc} {number}"}}
    customers = {"language": "DE", "foreign_language": "de"}
    config = load_config(write_config(tmp_path, templates=templates, customers=customers))
    german = config.templates.for_language("de")
    assert german.customer_subject == GERMAN["customer_subject"]
    assert german.signature == "-- \nRossi S.r.l. - Buchhaltung"
    assert german.doc_name("Fattura") == "Rechnung" and german.doc_name("ORDINE") == "Order"
    assert german.date_format == "{dd}.{mm}.{yyyy}"  # how German writes dates, unless set
    english = config.templates.for_language("en")
    assert english.customer_subject == "Your {doc} {number}"
    assert english.customer_body == ENGLISH.customer_body  # the rest stays built in
    assert (config.customers.language, config.customers.foreign_language) == ("de", "de")


def test_every_mistake_in_the_languages_at_once_with_its_line(tmp_path):
    problems = problems_of(
        tmp_path,
        "customers:\n"  # 13
        "  language: Italiano\n"  # 14
        "  foreign_language: en-US\n"  # 15
        "templates:\n"  # 16
        "  it:\n"  # 17
        "    customer_subject: x\n"  # 18
        "  de:\n"  # 19
        "    customer_subject: '{doc} Nr. {numer}'\n"  # 20
        "    all_to_subject: x\n"  # 21
        "    date_format: '{d}. {month} {yyyy}'\n"  # 22
        "    months: [Januar, Februar]\n"  # 23
        "    doc_names: [Rechnung]\n"  # 24
        "    signatur: x\n"  # 25
        "  fr: bonjour\n"  # 26
        "  xx: {}\n"  # 27
        "  customer_subjet: x\n"  # 28
        "  es:\n"  # 29
        "    customer_subject: '{doc} n.º {number} {date'\n"  # 30
        "    customer_body: 'Adjuntamos {doc}.'\n"  # 31
        "    date_format: '{d} de {month} de {yyyy}'\n",  # 32
    )
    assert problems == [
        "line 14, customers.language: expected a two-letter ISO 639-1 language code, got "
        "'Italiano'; Italian is it",
        "line 15, customers.foreign_language: expected a two-letter ISO 639-1 language code, "
        "got 'en-US'; write en, the language alone (without the country)",
        "line 17, templates.it: the Italian message is templates.customer_subject and "
        "templates.customer_body (and the top-level signature:); write it there, without it:",
        "line 19, templates.de.customer_body: is required: a language added in the config needs "
        "its own customer_subject and customer_body (only English is built in)",
        "line 20, templates.de.customer_subject: unknown field {numer} (valid fields: "
        "customer_code, customer_name, date, doc, number, sender_name, year)",
        "line 21, templates.de.all_to_subject: the accountant's bundle is always in Italian: "
        "write it as templates.all_to_subject",
        "line 23, templates.de.months: expected the twelve month names, January first; got 2",
        "line 24, templates.de.doc_names: expected the Italian names and their words, like "
        "{Fattura: Rechnung, Nota di credito: Gutschrift, Ordine: Bestellung}",
        "line 25, templates.de.signatur: unknown key (did you mean 'signature'?)",
        "line 26, templates.fr: expected the templates of fr (French) (customer_subject: …, "
        "customer_body: …)",
        "line 27, templates.xx: unknown key: not a template (customer_subject, customer_body, "
        "all_to_subject, all_to_body) nor a language: expected a two-letter ISO 639-1 language "
        "code, got 'xx' (it, en, de, fr, es, …)",
        "line 28, templates.customer_subjet: unknown key (did you mean 'customer_subject'?)",
        "line 30, templates.es.customer_subject: not a valid template (expected '}' before end "
        "of string); write {{ and }} for literal braces",
        "line 32, templates.es.date_format: {month} needs the month names: add templates.es.months",
    ]


def test_date_format_fields_are_checked_like_a_template(tmp_path):
    problems = problems_of(
        tmp_path, "templates:\n  en:\n    date_format: '{day}/{mm}'\n"
    )  # line 15
    assert problems == [
        "line 15, templates.en.date_format: unknown field {day} (valid fields: d, dd, m, mm, "
        "month, yyyy)"
    ]


def test_warnings_for_what_works_but_not_as_the_admin_may_think(tmp_path):
    german = {k: v for k, v in GERMAN.items() if k != "doc_names"}
    path = write_config(
        tmp_path,
        customers={"language": "it", "foreign_language": "fr"},
        templates={"de": german},
    )
    config, problems, _lines = read_config(path)
    assert problems == []
    assert [str(w) for w in config.warnings] == [
        "line 15, customers.foreign_language: no templates for fr (French): these customers get "
        "the Italian message; add templates.fr.customer_subject and "
        "templates.fr.customer_body to the config",
        "line 17, templates.de: {doc} has no words in de (German): Fattura, Nota di credito, "
        "Ordine … will read in English (Invoice, Credit note, Order); add templates.de.doc_names",
    ]


def test_norwegian_written_as_yaml_reads_it_is_not_lost_silently(tmp_path):
    """`no` is Norwegian to an admin and false to YAML 1.1: the admin is told to quote it."""
    problems = problems_of(
        tmp_path, "customers:\n  language: no\ntemplates:\n  no:\n    customer_subject: x\n"
    )
    assert problems == [
        "line 14, customers.language: YAML reads no as false: for Norwegian write 'no' in quotes",
        "line 16, templates.no: YAML reads no: (and yes:, on:, off:) as true or false: write "
        "'no': in quotes",
    ]
    quoted = "customers:\n  language: 'no'\n"
    quoted += "templates:\n  'no': {customer_subject: x, customer_body: y}\n"
    path = write_config(tmp_path)
    path.write_text(path.read_text() + quoted)
    config = load_config(path)
    assert config.customers.language == "no" and config.templates.has("no")
