"""The words of a customer's message in the customer's language: what a customer abroad reads
in the subject and the body, and which signature closes it."""

from __future__ import annotations

import pytest

from invoice_mailer.config.load import load_config
from invoice_mailer.config.texts import ENGLISH, LanguageTemplates
from invoice_mailer.delivery.customertext import customer_signature, customer_text, written_date
from invoice_mailer.fatturapa.reader import DOC_NAMES
from tests.support.configs import write_config

FACTS = {
    "doc": "Fattura",
    "number": "FPR 12/2026",
    "date": "05/03/2026",
    "year": "2026",
    "customer_name": "Harper & Sons Ltd",
    "customer_code": "C004",
}
GERMAN = {
    "customer_subject": "{doc} Nr. {number} vom {date}",
    "customer_body": "Sehr geehrte Damen und Herren ({customer_name}),\n"
    "anbei {doc} Nr. {number}.\n",
    "signature": "-- \nRossi S.r.l. - Buchhaltung",
    "doc_names": {"Fattura": "Rechnung", "nota di CREDITO": "Gutschrift", "Ordine": "Bestellung"},
}


@pytest.fixture
def config(tmp_path):
    return load_config(
        write_config(tmp_path, templates={"de": GERMAN}, signature="-- \nRossi S.r.l.\n")
    )


def test_italian_is_todays_message(config):
    assert customer_text(config, FACTS) == (
        "Fattura n. FPR 12/2026 del 05/03/2026",
        "Gentile Harper & Sons Ltd,\nin allegato Fattura n. FPR 12/2026 del 05/03/2026.\n",
    )
    assert customer_text(config, {**FACTS, "language": "it"}) == customer_text(config, FACTS)
    assert customer_signature(config, FACTS) == "-- \nRossi S.r.l.\n"


def test_english_is_built_in_with_the_kind_and_the_date_in_english(config):
    assert customer_text(config, {**FACTS, "language": "en"}) == (
        "Invoice no. FPR 12/2026 dated 5 March 2026",
        "Dear Harper & Sons Ltd,\nplease find attached Invoice no. FPR 12/2026 dated 5 March "
        "2026.\n",
    )
    assert customer_signature(config, {**FACTS, "language": "en"}) == "-- \nRossi S.r.l.\n"


@pytest.mark.parametrize(
    ("italian", "english"),
    [
        ("Fattura", "Invoice"),
        ("Acconto/anticipo su fattura", "Advance invoice"),
        ("Nota di credito", "Credit note"),
        ("Nota di debito", "Debit note"),
        ("Parcella", "Fee note"),
        ("Fattura differita", "Deferred invoice"),
        ("Ordine", "Order"),
        ("ORDINE", "Order"),  # as a file name may write it
        ("Documento", "Document"),
        ("Preventivo", "Preventivo"),  # a kind only the admin's pattern knows: as written
    ],
)
def test_every_kind_the_project_names_reads_in_english(config, italian, english):
    subject, _body = customer_text(config, {**FACTS, "doc": italian, "language": "en"})
    assert subject.startswith(f"{english} no. ")


def test_every_tipodocumento_the_reader_names_has_its_english_word():
    assert all(ENGLISH.doc_name(name) != name for name in DOC_NAMES.values())


def test_an_added_language_with_its_words_date_and_signature(config):
    facts = {**FACTS, "doc": "Nota di credito", "language": "de"}
    assert customer_text(config, facts) == (
        "Gutschrift Nr. FPR 12/2026 vom 05.03.2026",
        "Sehr geehrte Damen und Herren (Harper & Sons Ltd),\nanbei Gutschrift Nr. FPR 12/2026.\n",
    )
    assert customer_signature(config, facts) == "-- \nRossi S.r.l. - Buchhaltung"
    # A kind the admin did not translate reads in English rather than in Italian.
    subject, _body = customer_text(config, {**facts, "doc": "Parcella"})
    assert subject.startswith("Fee note Nr. ")


def test_a_language_without_templates_gets_the_italian_message(config):
    facts = {**FACTS, "language": "pl"}
    assert customer_text(config, facts) == customer_text(config, FACTS)
    assert customer_signature(config, facts) == "-- \nRossi S.r.l.\n"


@pytest.mark.parametrize(
    ("date_format", "months", "written"),
    [
        ("{dd}/{mm}/{yyyy}", (), "05/03/2026"),
        ("{d}.{m}.{yyyy}", (), "5.3.2026"),
        ("{yyyy}-{mm}-{dd}", (), "2026-03-05"),
        ("{d} {month} {yyyy}", ENGLISH.months, "5 March 2026"),
        ("{d}. {month} {yyyy}", ("Januar", "Februar", "März", *["x"] * 9), "5. März 2026"),
    ],
)
def test_dates_as_each_language_writes_them(date_format, months, written):
    language = LanguageTemplates("s", "b", date_format=date_format, months=months, language="xx")
    assert written_date("05/03/2026", language) == written


def test_a_date_routing_did_not_write_is_left_as_it_is():
    assert written_date("sometime", ENGLISH) == "sometime"
    assert written_date("", ENGLISH) == ""
