"""The texts of the customer's message as typed, frozen data: the Italian templates (templates.*),
the accountant's bundle, and each other language's (templates.LANG, English built in).

config/templatelanguages.py reads templates.LANG from YAML; delivery/customertext.py renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from invoice_mailer.config.languages import (
    DEFAULT_DATE_FORMAT,
    ENGLISH_BODY,
    ENGLISH_DATE_FORMAT,
    ENGLISH_DOC_NAMES,
    ENGLISH_MONTHS,
    ENGLISH_SUBJECT,
    ITALIAN,
)


@dataclass(frozen=True)
class LanguageTemplates:
    """The customer's message in one language: templates.LANG (the Italian one is templates.*)."""

    customer_subject: str
    customer_body: str
    signature: str | None = None  # None: the top-level signature ([Firma])
    # The document kinds as the project names them in Italian ("Fattura", "Nota di credito",
    # "Ordine", …) -> this language's words; {doc} says a kind missing here in English.
    doc_names: Mapping[str, str] = field(default_factory=dict)
    date_format: str = DEFAULT_DATE_FORMAT  # fields: languages.DATE_FIELDS
    months: tuple[str, ...] = ()  # January…December in this language, for {month}
    language: str = ITALIAN  # the ISO 639-1 code these are for

    def doc_name(self, italian: str) -> str:
        """{doc} in this language: the admin's word, else English, else as the file says it."""
        if self.language == ITALIAN:
            return italian
        wanted = " ".join(italian.split()).casefold()
        for table in (self.doc_names, ENGLISH_DOC_NAMES):
            for name, word in table.items():
                if name.casefold() == wanted:
                    return word
        return italian


ENGLISH = LanguageTemplates(
    customer_subject=ENGLISH_SUBJECT,
    customer_body=ENGLISH_BODY,
    doc_names=ENGLISH_DOC_NAMES,
    date_format=ENGLISH_DATE_FORMAT,
    months=ENGLISH_MONTHS,
    language="en",
)
BUILT_IN_LANGUAGES: Mapping[str, LanguageTemplates] = {"en": ENGLISH}


@dataclass(frozen=True)
class TemplatesConfig:
    # The Italian message (customers.language it, and any language without templates).
    customer_subject: str = "{doc} n. {number} del {date}"
    customer_body: str = "Gentile {customer_name},\nin allegato {doc} n. {number} del {date}.\n"
    # The accountant's bundle: always Italian.
    all_to_subject: str = "Documenti emessi - sessione del {date} ({count})"
    all_to_body: str = "In allegato {count} documenti:\n{files}\n"
    # templates.en, templates.de, …: English built in, the admin's YAML adds or overrides.
    languages: Mapping[str, LanguageTemplates] = field(
        default_factory=lambda: dict(BUILT_IN_LANGUAGES)
    )

    def has(self, code: str) -> bool:
        """Whether customers writing `code` get their own language (else Italian)."""
        return code == ITALIAN or code in self.languages

    def for_language(self, code: str | None) -> LanguageTemplates:
        """The templates of `code`; Italian for Italian, for None, and for a language without
        templates (`check` says which)."""
        found = self.languages.get(code) if code and code != ITALIAN else None
        if found is not None:
            return found
        return LanguageTemplates(self.customer_subject, self.customer_body)
