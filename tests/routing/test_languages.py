"""Which language a customer's message is written in: the address book's, else the fallback
for a FatturaPA XML whose customer is abroad, else customers.language."""

from __future__ import annotations

import logging

import pytest

from invoice_mailer.addressbook.book import Customer
from invoice_mailer.config.load import load_config
from invoice_mailer.routing.languages import choose_language, share_language
from tests.support.configs import write_config

GERMAN = Customer(code="C001", emails=("a@a.example",), language="de")
UNSET = Customer(code="C002", emails=("b@b.example",))


@pytest.fixture
def config(tmp_path):
    return load_config(write_config(tmp_path, customers={"foreign_language": "en"}))


@pytest.mark.parametrize(
    ("customer", "facts", "chosen"),
    [
        (GERMAN, {"xml_abroad": True}, ("de", "customer")),  # the address book wins
        (GERMAN, {}, ("de", "customer")),
        (UNSET, {"xml_abroad": True}, ("en", "abroad")),
        (None, {"xml_abroad": True}, ("en", "abroad")),  # found by the XML's PEC
        (UNSET, {"xml_abroad": False}, ("it", "default")),
        (UNSET, {}, ("it", "default")),  # a PDF cannot tell where the customer is
    ],
)
def test_the_address_book_then_the_xml_then_the_default(config, customer, facts, chosen):
    choose_language(config, customer, facts, set())
    assert (facts["language"], facts["language_from"]) == chosen


def test_a_language_without_templates_is_logged_once(config, caplog):
    warned: set[str] = set()
    polish = Customer(code="C003", emails=("c@c.example",), language="pl")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            choose_language(config, polish, {}, warned)
            choose_language(config, GERMAN, {}, warned)
    assert [r.getMessage() for r in caplog.records] == [
        "no templates for pl (Polish): customers in that language get the Italian message; add "
        "templates.pl.customer_subject and templates.pl.customer_body to the config",
        "no templates for de (German): customers in that language get the Italian message; add "
        "templates.de.customer_subject and templates.de.customer_body to the config",
    ]


def test_a_pdf_travelling_with_its_xml_takes_the_xmls_language_only_when_it_had_none():
    pdf = {"language": "it", "language_from": "default"}
    share_language(pdf, {"language": "en", "language_from": "abroad"})
    assert pdf == {"language": "en", "language_from": "abroad"}
    chosen = {"language": "de", "language_from": "customer"}
    share_language(chosen, {"language": "en", "language_from": "abroad"})
    assert chosen["language"] == "de"
