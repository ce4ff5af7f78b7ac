"""templates.LANG: the customer's message in other languages than Italian, read from the YAML
with every problem at once (English is built in; the admin adds or overrides), and the rules
`check` applies to them besides the fields and syntax of every template (config/checks.py).
"""

from __future__ import annotations

import difflib
from typing import Any

from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.languages import (
    DEFAULT_DATE_FORMAT,
    ITALIAN,
    NUMERIC_DATES,
    describe,
    language_code,
)
from invoice_mailer.config.model import Config
from invoice_mailer.config.texts import BUILT_IN_LANGUAGES, LanguageTemplates
from invoice_mailer.errors import Problem

# The keys of templates: itself; every other key there names a language.
ITALIAN_KEYS = ("customer_subject", "customer_body", "all_to_subject", "all_to_body")
_BUNDLE_KEYS = ("all_to_subject", "all_to_body")


def read_languages(templates: ys.Reader) -> dict[str, LanguageTemplates]:
    """The built-in languages, overridden or joined by the admin's templates.LANG sections."""
    found = dict(BUILT_IN_LANGUAGES)
    for key in list(templates.data):
        name = str(key)
        if isinstance(key, bool):
            del templates.data[key]  # reported here, so not again as an unknown key "False"
            message = "YAML reads no: (and yes:, on:, off:) as true or false: write 'no': in quotes"
            templates.problem(templates.key("no"), message)
            continue
        if name in ITALIAN_KEYS:
            continue
        if difflib.get_close_matches(name, ITALIAN_KEYS, n=1) and len(name) > 5:
            continue  # a misspelt key of templates itself: finish() says which one was meant
        templates.taken.add(key)
        dotted = templates.key(name)
        if name.lower() == ITALIAN:
            templates.problem(
                dotted,
                "the Italian message is templates.customer_subject and templates.customer_body "
                "(and the top-level signature:); write it there, without it:",
            )
            continue
        try:
            code = language_code(name)
        except ys.Invalid as exc:
            keys = ", ".join(ITALIAN_KEYS)
            templates.problem(dotted, f"unknown key: not a template ({keys}) nor a language: {exc}")
            continue
        if not isinstance(templates.data[key], dict):
            example = "customer_subject: …, customer_body: …"
            templates.problem(dotted, f"expected the templates of {describe(code)} ({example})")
            continue
        section = templates.section(key)
        found[code] = _language(code, section, found.get(code))
        section.finish()
    return found


def _language(code: str, section: ys.Reader, built_in: LanguageTemplates | None):
    """One templates.LANG section; a built-in language's keys are defaults, others required."""
    for name in _BUNDLE_KEYS:
        if name in section.data:
            section.taken.add(name)
            section.problem(
                section.key(name),
                f"the accountant's bundle is always in Italian: write it as templates.{name}",
            )
    required = built_in is None
    for name in ("customer_subject", "customer_body"):
        if required and not section.has(name):
            section.problem(
                section.key(name),
                "is required: a language added in the config needs its own customer_subject and "
                "customer_body (only English is built in)",
            )
    date_default = NUMERIC_DATES.get(code, DEFAULT_DATE_FORMAT)
    base = built_in or LanguageTemplates("", "", date_format=date_default, language=code)
    return LanguageTemplates(
        customer_subject=section.take("customer_subject", ys.text, base.customer_subject),
        customer_body=section.take("customer_body", ys.text, base.customer_body),
        signature=section.take("signature", ys.text, base.signature),
        doc_names=section.take("doc_names", _doc_names, base.doc_names),
        date_format=section.take("date_format", ys.single_line, base.date_format),
        months=section.take("months", _months, base.months),
        language=code,
    )


def _doc_names(value: Any) -> dict[str, str]:
    example = "{Fattura: Rechnung, Nota di credito: Gutschrift, Ordine: Bestellung}"
    if not isinstance(value, dict):
        raise ys.Invalid(f"expected the Italian names and their words, like {example}")
    names = {}
    for italian, word in value.items():
        name, text = ys.single_line(italian).strip(), ys.single_line(word).strip()
        if not name or not text:
            raise ys.Invalid(f"an empty name in {italian!r}: {word!r}; expected, like {example}")
        names[name] = text
    return names


def _months(value: Any) -> tuple[str, ...]:
    names = ys.listing(ys.single_line)(value)
    if len(names) != 12 or not all(name.strip() for name in names):
        raise ys.Invalid(f"expected the twelve month names, January first; got {len(names)}")
    return tuple(name.strip() for name in names)


def language_warnings(config: Config, top: ys.Reader, warnings: list[Problem]) -> None:
    """What works, but not as the admin may think: a language that gets the Italian message,
    and a {doc} that will read in English."""
    templates = config.templates
    for key in ("customers.language", "customers.foreign_language"):
        code = getattr(config.customers, key.rpartition(".")[2])
        if not templates.has(code):
            warnings.append(Problem(top.line(key), key, untemplated(code)))
    for code, language in templates.languages.items():
        if code in BUILT_IN_LANGUAGES or language.doc_names:
            continue
        if any("{doc" in text for text in (language.customer_subject, language.customer_body)):
            key = f"templates.{code}"
            message = (
                f"{{doc}} has no words in {describe(code)}: Fattura, Nota di credito, Ordine … "
                f"will read in English (Invoice, Credit note, Order); add {key}.doc_names"
            )
            warnings.append(Problem(top.line(key), key, message))


def untemplated(code: str, whom: str = "these customers") -> str:
    """The warning for a language with no templates (`check` says it once per language)."""
    return (
        f"no templates for {describe(code)}: {whom} get the Italian message; add "
        f"templates.{code}.customer_subject and templates.{code}.customer_body to the config"
    )
