"""Reasons in Italian, for what reaches a message (the accountant's bundle); logs stay English.

The stages word their reasons in English for the admin's log and the ledger. A reason that
goes into a message is translated here, sentence by sentence; a server's reply is quoted as
the server wrote it; a reason with no translation is never passed through in English.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# What routing looked up to find a customer (routing/customers.find_customer's labels and notes).
_LABELS = (("code ", "codice "), ("Codice Fiscale ", "codice fiscale "))
_NOTES = {
    " (not a valid address)": " (indirizzo non valido)",
    " (not used: customers.use_xml_pec is off)": " (non usata: customers.use_xml_pec è spento)",
}

# The few expat messages a broken export produces; others are left out.
_EXPAT = {
    "syntax error": "errore di sintassi",
    "no element found": "il file finisce prima del tempo",
    "mismatched tag": "un tag chiuso con un nome diverso",
    "not well-formed (invalid token)": "carattere non valido",
    "unclosed token": "un elemento non chiuso",
    "junk after document element": "testo dopo la fine del documento",
    "undefined entity": "entità non definita",
}

_P7M = {
    "the file is empty": "il file è vuoto",
    "PEM text without a PKCS7 or CMS block": "testo PEM senza un blocco PKCS7 o CMS",
    "the PEM block is not valid base64": "il blocco PEM non è base64 valido",
    "neither DER, base64 nor PEM": "né DER, né base64, né PEM",
    "too many layers of base64": "troppi livelli di base64",
    "it carries no document (a detached signature)": "non contiene il documento (firma separata)",
    "its content is not a document": "il contenuto non è un documento",
}

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rules() -> list[Rule]:
    def fixed(text: str) -> Callable[[re.Match[str]], str]:
        return lambda _m: text

    table: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (r"the file is empty", fixed("il file è vuoto")),
        (r"not a PDF.*", fixed("non è un PDF (non inizia con %PDF-)")),
        (r"PDF is incomplete \(no %%EOF at the end\)", fixed("PDF incompleto (manca %%EOF)")),
        (r"XML is empty", fixed("XML vuoto")),
        (r"XML declares a DTD.*", fixed("l'XML dichiara un DTD, rifiutato per sicurezza")),
        (r"XML declares entities.*", fixed("l'XML dichiara entità, rifiutate per sicurezza")),
        (r"XML refers to an external file.*", fixed("l'XML rimanda a un file esterno, rifiutato")),
        (r"XML is not well-formed: line (\d+), column (\d+): (.*)", _not_well_formed),
        (r"the signed envelope opens, but inside it: (.*)", _inside_envelope),
        (r"p7m envelope too large: (.*), the limit is (.*)", _p7m_too_large),
        (r"not a signed p7m envelope: it holds (.*), not signed data", _p7m_holds),
        (r"not a signed p7m envelope: the file is damaged or truncated.*", _p7m_damaged),
        (r"not a signed p7m envelope: (.*)", _p7m_other),
        (r"the file cannot be read as (\w+): .*", lambda m: f"il file non si legge come {m[1]}"),
        (r"same content as document (\d+); not sent", _duplicate),
        (r"the file is ([\d,]+) bytes once encoded.*\(([\d,]+)\)", _too_big),
        (r"the file is ([\d,]+) bytes, over smtp.max_message_size \(([\d,]+)\)", _oversize),
        (r"no customer found in the address book \(looked up (.*)\)", _unknown_customer),
        (r"customer unknown \((.*)\); sent only to all_to", _unknown_customer),
        (r"no To address took it: (.*)", lambda m: reason(m[1])),
        (r"\S+ refused: (\d{3}) (.*)", _server_reply),
        (r"(\d{3}) (.*?)(?: \((?:MAIL|RCPT|DATA|EHLO|AUTH)[^)]*\))?(?:;.*)?", _server_reply),
    ]
    return [(re.compile(pattern, re.DOTALL), render) for pattern, render in table]


def reason(text: str | None) -> str:
    """The Italian wording of one reason from the ledger (English there, for the log)."""
    text = (text or "").strip()
    for pattern, render in _RULES:
        match = pattern.fullmatch(text)
        if match:
            return render(match)
    return "errore tecnico (il dettaglio è nel registro del servizio)"


def looked_up(text: str) -> str:
    """ "code C999, P.IVA IT0123…" -> "cercato per codice C999, P.IVA IT0123…"."""
    text = text.strip()
    if not text or text.startswith("nothing"):
        return "nessun dato per cercarlo"
    for english, italian in (*_LABELS, *_NOTES.items()):
        text = text.replace(english, italian)
    return f"cercato per {text}"


def _n(text: str) -> str:
    return text.replace(",", ".")  # thousands as an Italian reader writes them


def _not_well_formed(m: re.Match[str]) -> str:
    detail = _EXPAT.get(m[3].strip())
    where = f"riga {m[1]}, colonna {m[2]}"
    return f"XML non valido alla {where}" + (f": {detail}" if detail else "")


def _inside_envelope(m: re.Match[str]) -> str:
    return f"la busta firmata si apre, ma il contenuto: {reason(m[1])}"


def _p7m_too_large(m: re.Match[str]) -> str:
    return f"busta p7m troppo grande: {m[1]}, il limite è {m[2]}"


def _p7m_holds(m: re.Match[str]) -> str:
    return f"non è una busta p7m firmata: contiene {m[1]}, non dati firmati"


def _p7m_damaged(_m: re.Match[str]) -> str:
    return "non è una busta p7m firmata: il file è danneggiato o troncato"


def _p7m_other(m: re.Match[str]) -> str:
    detail = _P7M.get(m[1].strip())
    return "non è una busta p7m firmata" + (f": {detail}" if detail else "")


def _duplicate(m: re.Match[str]) -> str:
    return f"stesso contenuto del documento {m[1]}; non inviato di nuovo"


def _too_big(m: re.Match[str]) -> str:
    return f"troppo grande ({_n(m[1])} byte in base64, limite {_n(m[2])})"


def _oversize(m: re.Match[str]) -> str:
    return f"troppo grande ({_n(m[1])} byte, limite {_n(m[2])})"


def _unknown_customer(m: re.Match[str]) -> str:
    return f"cliente sconosciuto ({looked_up(m[1])})"


def _server_reply(m: re.Match[str]) -> str:
    return f"rifiutato dal server di posta: «{m[1]} {m[2].strip()}»"


_RULES = _rules()
