"""The language of a customer's message, decided when the document is routed and kept with its
facts: the address book's Lingua first, then customers.foreign_language for a FatturaPA XML
whose customer is abroad, then customers.language. The words are chosen when the message is
built (delivery/customertext.py), so templates added by a reload reach messages not yet built.
"""

from __future__ import annotations

import logging
from typing import Any

from invoice_mailer.addressbook.book import Customer
from invoice_mailer.config.model import Config
from invoice_mailer.config.templatelanguages import untemplated

log = logging.getLogger(__name__)

FROM_CUSTOMER, FROM_ABROAD, FROM_DEFAULT = "customer", "abroad", "default"


def choose_language(
    config: Config, customer: Customer | None, facts: dict[str, Any], warned: set[str]
) -> None:
    """Set facts["language"] and where it comes from; log once per language that has no
    templates (those customers get the Italian message, as `check` says)."""
    if customer is not None and customer.language:
        code, source = customer.language, FROM_CUSTOMER
    elif facts.get("xml_abroad"):
        code, source = config.customers.foreign_language, FROM_ABROAD
    else:
        code, source = config.customers.language, FROM_DEFAULT
    facts["language"], facts["language_from"] = code, source
    if not config.templates.has(code) and code not in warned:
        warned.add(code)
        log.warning("%s", untemplated(code, "customers in that language"))


def share_language(pdf: dict[str, Any], xml: dict[str, Any]) -> None:
    """A PDF travelling with its XML: the XML may know that the customer is abroad, which the
    PDF's name cannot tell. The one message is written in that language."""
    if pdf.get("language_from") == FROM_DEFAULT and xml.get("language_from") == FROM_ABROAD:
        pdf.update(language=xml["language"], language_from=FROM_ABROAD)
