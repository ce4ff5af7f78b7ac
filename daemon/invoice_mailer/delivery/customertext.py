"""The words of a customer's message in the customer's language: templates.LANG (Italian when
the language has none), the document kind in that language's words, the date as it writes
dates, and its signature. Only customer messages and their copies; the accountant's bundle and
the admin's alerts keep their own words.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from invoice_mailer.config.model import Config
from invoice_mailer.config.texts import LanguageTemplates
from invoice_mailer.delivery.messagetext import render
from invoice_mailer.fatturapa.reader import DEFAULT_DOC_NAME


def customer_text(config: Config, facts: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body for the document these routing facts describe."""
    language = config.templates.for_language(facts.get("language"))
    fields = customer_fields(config, facts, language)
    return render(language.customer_subject, fields), render(language.customer_body, fields)


def customer_signature(config: Config, facts: Mapping[str, Any]) -> str:
    """templates.LANG.signature, else the one signature ([Firma])."""
    language = config.templates.for_language(facts.get("language"))
    return config.signature if language.signature is None else language.signature


def customer_fields(
    config: Config, facts: Mapping[str, Any], language: LanguageTemplates
) -> dict[str, str]:
    """The template fields of docs/DESIGN.md for one document, in `language`."""
    return {
        "doc": language.doc_name(str(facts.get("doc") or DEFAULT_DOC_NAME)),
        "number": str(facts.get("number", "")),
        "date": written_date(str(facts.get("date", "")), language),
        "year": str(facts.get("year", "")),
        "customer_name": str(facts.get("customer_name", "")),
        "customer_code": str(facts.get("customer_code", "")),
        "sender_name": config.sender.name,
    }


def written_date(italian: str, language: LanguageTemplates) -> str:
    """The invoice date as `language` writes it. Routing keeps it as dd/mm/yyyy (the Italian
    form, which the bundle shows); anything else is left as it is."""
    try:
        # A calendar day, as routing wrote it: no time of day, so no zone to attach.
        day = datetime.datetime.strptime(italian, "%d/%m/%Y").date()  # noqa: DTZ007
    except ValueError:
        return italian
    months = language.months
    return render(
        language.date_format,
        {
            "d": str(day.day),
            "dd": f"{day.day:02d}",
            "m": str(day.month),
            "mm": f"{day.month:02d}",
            "yyyy": f"{day.year:04d}",
            "month": months[day.month - 1] if len(months) == 12 else f"{day.month:02d}",
        },
    )
