"""Languages a customer may be written to: ISO 639-1 codes, how each language writes a date,
and the words English gives the document kinds. Pure data and the one parser of a code, shared
by the config (templates.LANG, customers.language) and the address book (Lingua).
"""

from __future__ import annotations

import re
from typing import Any

from invoice_mailer.config.yamlread import Invalid

ITALIAN = "it"

# ISO 639-1, as Debian's iso-codes lists it (iso_639-2.json, the entries with an alpha_2).
_ISO_639_1 = """
aa Afar; ab Abkhazian; ae Avestan; af Afrikaans; ak Akan; am Amharic; an Aragonese; ar Arabic;
as Assamese; av Avaric; ay Aymara; az Azerbaijani; ba Bashkir; be Belarusian; bg Bulgarian;
bh Bihari; bi Bislama; bm Bambara; bn Bengali; bo Tibetan; br Breton; bs Bosnian; ca Catalan;
ce Chechen; ch Chamorro; co Corsican; cr Cree; cs Czech; cu Church Slavic; cv Chuvash; cy Welsh;
da Danish; de German; dv Divehi; dz Dzongkha; ee Ewe; el Greek; en English; eo Esperanto;
es Spanish; et Estonian; eu Basque; fa Persian; ff Fulah; fi Finnish; fj Fijian; fo Faroese;
fr French; fy Western Frisian; ga Irish; gd Scottish Gaelic; gl Galician; gn Guarani;
gu Gujarati; gv Manx; ha Hausa; he Hebrew; hi Hindi; ho Hiri Motu; hr Croatian; ht Haitian;
hu Hungarian; hy Armenian; hz Herero; ia Interlingua; id Indonesian; ie Interlingue; ig Igbo;
ii Sichuan Yi; ik Inupiaq; io Ido; is Icelandic; it Italian; iu Inuktitut; ja Japanese;
jv Javanese; ka Georgian; kg Kongo; ki Kikuyu; kj Kuanyama; kk Kazakh; kl Kalaallisut; km Khmer;
kn Kannada; ko Korean; kr Kanuri; ks Kashmiri; ku Kurdish; kv Komi; kw Cornish; ky Kyrgyz;
la Latin; lb Luxembourgish; lg Ganda; li Limburgish; ln Lingala; lo Lao; lt Lithuanian;
lu Luba-Katanga; lv Latvian; mg Malagasy; mh Marshallese; mi Maori; mk Macedonian;
ml Malayalam; mn Mongolian; mr Marathi; ms Malay; mt Maltese; my Burmese; na Nauru;
nb Norwegian Bokmål; nd North Ndebele; ne Nepali; ng Ndonga; nl Dutch; nn Norwegian Nynorsk;
no Norwegian; nr South Ndebele; nv Navajo; ny Chichewa; oc Occitan; oj Ojibwa; om Oromo;
or Oriya; os Ossetian; pa Punjabi; pi Pali; pl Polish; ps Pashto; pt Portuguese; qu Quechua;
rm Romansh; rn Rundi; ro Romanian; ru Russian; rw Kinyarwanda; sa Sanskrit; sc Sardinian;
sd Sindhi; se Northern Sami; sg Sango; si Sinhala; sk Slovak; sl Slovenian; sm Samoan;
sn Shona; so Somali; sq Albanian; sr Serbian; ss Swati; st Southern Sotho; su Sundanese;
sv Swedish; sw Swahili; ta Tamil; te Telugu; tg Tajik; th Thai; ti Tigrinya; tk Turkmen;
tl Tagalog; tn Tswana; to Tonga; tr Turkish; ts Tsonga; tt Tatar; tw Twi; ty Tahitian;
ug Uyghur; uk Ukrainian; ur Urdu; uz Uzbek; ve Venda; vi Vietnamese; vo Volapük; wa Walloon;
wo Wolof; xh Xhosa; yi Yiddish; yo Yoruba; za Zhuang; zh Chinese; zu Zulu
"""
LANGUAGE_NAMES: dict[str, str] = dict(
    entry.split(" ", 1) for entry in (" ".join(e.split()) for e in _ISO_639_1.split(";"))
)

# What an office writes in a "Lingua" cell instead of the code: the name in Italian, in
# English or in the language itself. Only for the hint; the cell must hold the code.
_NAMES_WRITTEN = {
    "italiano": "it", "inglese": "en", "english": "en", "tedesco": "de", "deutsch": "de",
    "francese": "fr", "français": "fr", "francais": "fr", "spagnolo": "es", "español": "es",
    "espanol": "es", "portoghese": "pt", "português": "pt", "olandese": "nl",
    "nederlands": "nl", "polacco": "pl", "polski": "pl", "russo": "ru", "rumeno": "ro",
    "romeno": "ro", "greco": "el", "svedese": "sv", "danese": "da", "norvegese": "no",
    "finlandese": "fi", "ceco": "cs", "slovacco": "sk", "sloveno": "sl", "croato": "hr",
    "ungherese": "hu", "turco": "tr", "cinese": "zh", "giapponese": "ja", "arabo": "ar",
    "albanese": "sq", "bulgaro": "bg", "ucraino": "uk", "serbo": "sr",
}  # fmt: skip
_NAMES_WRITTEN.update({name.casefold(): code for code, name in LANGUAGE_NAMES.items()})
_WITH_REGION = re.compile(r"([a-z]{2})[-_][a-z0-9]{2,8}", re.IGNORECASE)  # de-CH, en_GB, pt-BR


def language_code(value: Any) -> str:
    """A two-letter ISO 639-1 code, any case, as `de`; Invalid (with what to write) otherwise."""
    if value is False:
        raise Invalid("YAML reads no as false: for Norwegian write 'no' in quotes")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"expected a two-letter ISO 639-1 language code such as en, got {value!r}")
    word = str(value).strip()
    code = word.lower()
    if code in LANGUAGE_NAMES:
        return code
    region = _WITH_REGION.fullmatch(word)
    if region and region.group(1).lower() in LANGUAGE_NAMES:
        hint = f"; write {region.group(1).lower()}, the language alone (without the country)"
    elif word.casefold() in _NAMES_WRITTEN:
        code = _NAMES_WRITTEN[word.casefold()]
        hint = f"; {LANGUAGE_NAMES[code]} is {code}"
    else:
        hint = " (it, en, de, fr, es, …)"
    shown = word if len(word) <= 40 else word[:40] + "…"
    raise Invalid(f"expected a two-letter ISO 639-1 language code, got {shown!r}{hint}")


def describe(code: str) -> str:
    """`de (German)`, for the admin."""
    return f"{code} ({LANGUAGE_NAMES.get(code, '?')})"


# --- dates ----------------------------------------------------------------------------------

# The fields of templates.LANG.date_format.
DATE_FIELDS = frozenset({"d", "dd", "m", "mm", "yyyy", "month"})
DEFAULT_DATE_FORMAT = "{dd}/{mm}/{yyyy}"
# How each language writes a date in figures (CLDR's short forms, with a four-digit year): the
# date_format of an added language that does not set one. Others write dd/mm/yyyy.
NUMERIC_DATES = {
    "it": "{dd}/{mm}/{yyyy}", "fr": "{dd}/{mm}/{yyyy}", "es": "{dd}/{mm}/{yyyy}",
    "pt": "{dd}/{mm}/{yyyy}", "ca": "{dd}/{mm}/{yyyy}", "el": "{d}/{m}/{yyyy}",
    "de": "{dd}.{mm}.{yyyy}", "da": "{dd}.{mm}.{yyyy}", "nb": "{dd}.{mm}.{yyyy}",
    "nn": "{dd}.{mm}.{yyyy}", "no": "{dd}.{mm}.{yyyy}", "pl": "{dd}.{mm}.{yyyy}",
    "ro": "{dd}.{mm}.{yyyy}", "ru": "{dd}.{mm}.{yyyy}", "uk": "{dd}.{mm}.{yyyy}",
    "tr": "{dd}.{mm}.{yyyy}", "fi": "{d}.{m}.{yyyy}", "cs": "{d}. {m}. {yyyy}",
    "sk": "{d}. {m}. {yyyy}", "sl": "{d}. {m}. {yyyy}", "hr": "{dd}. {mm}. {yyyy}.",
    "nl": "{dd}-{mm}-{yyyy}", "sv": "{yyyy}-{mm}-{dd}", "lt": "{yyyy}-{mm}-{dd}",
    "hu": "{yyyy}. {mm}. {dd}.", "ja": "{yyyy}/{mm}/{dd}", "zh": "{yyyy}/{mm}/{dd}",
}  # fmt: skip


# --- the built-in English -------------------------------------------------------------------

ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# The Italian names the project gives a document (file-name pattern, TipoDocumento), in English.
ENGLISH_DOC_NAMES = {
    "Fattura": "Invoice",  # TD01
    "Acconto/anticipo su fattura": "Advance invoice",  # TD02
    "Nota di credito": "Credit note",  # TD04
    "Nota di debito": "Debit note",  # TD05
    "Parcella": "Fee note",  # TD06
    "Fattura differita": "Deferred invoice",  # TD24
    "Ordine": "Order",
    "Documento": "Document",
}
ENGLISH_SUBJECT = "{doc} no. {number} dated {date}"
ENGLISH_BODY = "Dear {customer_name},\nplease find attached {doc} no. {number} dated {date}.\n"
ENGLISH_DATE_FORMAT = "{d} {month} {yyyy}"  # 18 December 2014: read alike in London and Boston
