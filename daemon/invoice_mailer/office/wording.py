"""How the office's view words things: states, roles and reasons, in Italian.

The ledger keeps the service's reasons in English (for the log); bundles/italian.py translates
the ones it knows. A reason it does not know is shown as the ledger has it, never replaced by
a vaguer sentence: the office can read it to the admin.
"""

from __future__ import annotations

import re
import time

from invoice_mailer.bundles import italian
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose

DOCUMENT_STATES = {
    DocumentState.TAKEN: "preso in carico",
    DocumentState.WAITING: "in attesa dell'altra metà",
    DocumentState.ROUTED: "in invio",
    DocumentState.HELD: "in attesa",
    DocumentState.DONE: "inviato",
    DocumentState.FAILED: "non inviato",
    DocumentState.SUPERSEDED: "sostituito",
    DocumentState.DISMISSED: "chiuso a mano",
}
# What the office filters by, in the order it thinks of them.
STATE_FILTERS = (
    DocumentState.DONE,
    DocumentState.HELD,
    DocumentState.FAILED,
    DocumentState.ROUTED,
    DocumentState.WAITING,
    DocumentState.TAKEN,
    DocumentState.SUPERSEDED,
    DocumentState.DISMISSED,
)
DELIVERY_STATES = {
    DeliveryState.QUEUED: "in coda",
    DeliveryState.SENDING: "in invio",
    DeliveryState.DEFERRED: "rimandato",
    DeliveryState.UNCONFIRMED: "non confermato",
    DeliveryState.SENT: "inviato",
    DeliveryState.FAILED: "rifiutato",
    DeliveryState.RETRIED: "sostituito da un nuovo invio",
}
PURPOSES = {
    Purpose.CUSTOMER: "al cliente",
    Purpose.COPY: "copia (Copia a)",
    Purpose.BUNDLE: "al commercialista (Tutto a)",
    Purpose.ALERT: "avviso all'amministratore",
}
KINDS = {"pdf": "PDF", "xml": "XML", "p7m": "XML firmato"}
# Each receipt as the PEC rules name it (receipts/pec.py ReceiptKind), and a bounce.
RECEIPT_KINDS = {
    "accettazione": "Ricevuta di accettazione",
    "non-accettazione": "Avviso di non accettazione",
    "presa-in-carico": "Ricevuta di presa in carico",
    "avvenuta-consegna": "Ricevuta di avvenuta consegna",
    "errore-consegna": "Avviso di mancata consegna",
    "preavviso-errore-consegna": "Preavviso di mancata consegna",
    "rilevazione-virus": "Avviso di rilevazione virus",
    "bounce": "Messaggio di ritorno (mancata consegna)",
}

_UNKNOWN = "errore tecnico"
_AMBIGUOUS = re.compile(
    r"ambiguous: (?P<key>.*) is on (?P<n>\d+) rows of the address book: (?P<rows>.*?);.*", re.DOTALL
)
_DUPLICATE = re.compile(
    r"same content as document (?P<id>\d+) \((?P<name>.*?)\), already sent to (?P<to>.*) "
    r"on (?P<when>[\d: -]+); not sent again"
)
_SUPERSEDED = re.compile(r"superseded by document (?P<id>\d+) \((?P<name>.*?)\), which was sent")


def reason(text: str | None) -> str:
    """One reason from the ledger, in Italian where it is known, else as written."""
    text = (text or "").strip()
    if not text:
        return ""
    ambiguous = _AMBIGUOUS.fullmatch(text)
    if ambiguous:
        rows = ambiguous["rows"].replace(" (line ", " (riga ")
        return (
            f"ambiguo: {key_label(ambiguous['key'])} è su {ambiguous['n']} righe "
            f"dell'anagrafica: {rows}; va corretta l'anagrafica (si ricarica da sola)"
        )
    duplicate = _DUPLICATE.fullmatch(text)
    if duplicate:
        return (
            f"stesso contenuto del documento {duplicate['id']} ({duplicate['name']}), già "
            f"inviato a {duplicate['to']} il {duplicate['when']}: non inviato di nuovo"
        )
    said = italian.reason(text)
    return text if said.startswith(_UNKNOWN) else said


def key_label(looked_up: str) -> str:
    """ "code C042, P.IVA IT0123…" as the office says it: "codice C042, P.IVA IT0123…"."""
    return italian.looked_up(looked_up).removeprefix("cercato per ")


def superseded(text: str | None) -> tuple[int, str] | None:
    """(the id, the file name) of the document that replaced this one, from its reason."""
    found = _SUPERSEDED.search(text or "")
    return (int(found["id"]), found["name"]) if found else None


def when(moment: float | None) -> str:
    """A time as the office reads it: 03/12/2026 14:05 (local time)."""
    return time.strftime("%d/%m/%Y %H:%M", time.localtime(moment)) if moment else ""


def size(count: int) -> str:
    if count < 1000:
        return f"{count} byte"
    if count < 1_000_000:
        return f"{count / 1000:.0f} kB"
    return f"{count / 1_000_000:.1f} MB".replace(".", ",")
