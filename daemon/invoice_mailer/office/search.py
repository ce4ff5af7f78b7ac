"""One search for `status --find` and the web page: "did Rossi get invoice 201?".

What is typed is cut into words (letters and digits; everything else only separates), and a
document matches when every word is found in it: its number, file name, customer code or name,
P.IVA or codice fiscale (from the XML, and from the address book), or a recipient or Message-ID
of a message that carried it; or, typed whole, the identificativo of a receipt about it (the PEC
provider's, or SdI's IdentificativoSdI). A word with a digit must match a whole word ("201" is not
"2026"); the last word, when no document has it whole, also matches the start of one ("ross"
finds Rossi); case and accents do not matter. Nothing typed is a wildcard or an operator. A
date range and states narrow it.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
from dataclasses import dataclass, field

from invoice_mailer.addressbook.book import AddressBook
from invoice_mailer.addressbook.fields import normalise_tax_code, normalise_vat
from invoice_mailer.ledger import search as queries
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState

# Words that say "number" before one ("Fattura n. 201", "nr 201"): they find nothing themselves.
FILLERS = frozenset({"n", "nr", "num", "numero"})
_WORD = re.compile(r"[^\W_]+")
_TAX_KEY = re.compile(r"(IT)?[0-9]{11}|[A-Z0-9]{16}")


@dataclass(frozen=True)
class Search:
    """What the office asks: a text, a range of days (both included, local time), states."""

    text: str = ""
    since: datetime.date | None = None
    until: datetime.date | None = None
    states: tuple[DocumentState, ...] = ()

    def words(self) -> list[str]:
        return [w for w in _WORD.findall(self.text.casefold()) if w not in FILLERS]

    @property
    def asks_anything(self) -> bool:
        return bool(self.words() or self.since or self.until or self.states)


@dataclass(frozen=True)
class Found:
    rows: list[sqlite3.Row] = field(default_factory=list)
    more: bool = False  # there are more than the rows shown


def fts_query(words: list[str], alternatives: tuple[str, ...] = (), prefix: bool = False) -> str:
    """The FTS5 query: every word, quoted (so that nothing typed is syntax), all of them
    required; with `prefix`, the last word also as the start of a longer one. `alternatives`:
    other ways to match, each already a query (see `_tax_alternatives`)."""
    terms = [_quote(word) for word in words]
    if prefix:
        terms[-1] += "*"
    query = " AND ".join(terms)
    return " OR ".join([f"({query})", *alternatives]) if alternatives else query


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _tax_alternatives(
    book: AddressBook | None, text: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A P.IVA or codice fiscale typed with spaces or dots ("012 345 678 90") as one word; and
    the codes of the customers whose row has it, as queries of the documents' `code` column: a
    PDF carries neither, its customer's row does (the address book as it is now)."""
    compact = re.sub(r"[\s.\-]", "", text).upper()
    if not _TAX_KEY.fullmatch(compact):
        return (), ()
    codes: dict[str, None] = {}
    if book is not None:
        found = book.find("vat", normalise_vat(compact)) + book.find(
            "tax_code", normalise_tax_code(compact)
        )
        codes = dict.fromkeys(customer.code for customer in found)
    return (_quote(compact),), tuple(f"code : {_quote(code)}" for code in codes)


def _unfinished(ledger: Ledger, word: str) -> bool:
    """A word of letters that no document has whole ("ross"): the start of one ("Rossi").
    A word that exists is taken as typed: a prefix of a common word costs as much as all the
    documents that have it (FTS5 merges their lists), a whole word only the page it fills."""
    return word.isalpha() and len(word) > 1 and not queries.has_word(ledger.db, _quote(word))


def day_start(day: datetime.date) -> float:
    """Midnight at the start of `day`, local time, as a timestamp."""
    # A calendar day from the office: local midnight, whatever the zone's offset that day.
    return datetime.datetime.combine(day, datetime.time()).timestamp()


def find(ledger: Ledger, search: Search, limit: int, book: AddressBook | None = None) -> Found:
    """The documents `search` asks for, newest first, at most `limit`."""
    if not search.asks_anything:
        return Found()
    since = day_start(search.since) if search.since else None
    before = day_start(search.until + datetime.timedelta(days=1)) if search.until else None
    ids = queries.id_bounds(ledger.db, since, before)
    if ids is None:
        return Found()
    words = search.words()
    if words:
        keys, codes = _tax_alternatives(book, search.text)
        own, carried = fts_query(words, keys + codes), fts_query(words, keys)
        rows = queries.matching(ledger.db, own, carried, ids, search.states, limit + 1)
        if len(rows) <= limit and _unfinished(ledger, words[-1]):
            # Names are typed in part; addresses and Message-IDs are typed or pasted whole.
            own = fts_query(words, keys + codes, prefix=True)
            more = queries.matching(ledger.db, own, None, ids, search.states, limit + 1)
            rows = _merged(rows, more)
        if identificativo := receipt_key(search.text):
            more = queries.by_receipt(ledger.db, identificativo, ids, search.states, limit + 1)
            rows = _merged(rows, more)
    elif search.text.strip():
        return Found()  # only punctuation: nothing to look for, and never "everything"
    else:
        rows = queries.listing(ledger.db, ids, search.states, limit + 1)
    return Found(rows[:limit], len(rows) > limit)


def receipt_key(text: str) -> str | None:
    """What is typed, as a receipt's identificativo: one piece, without the <> it is
    sometimes quoted in ("<opec…@pec.aruba.it>", "4501237")."""
    key = text.strip().removeprefix("<").removesuffix(">")
    return key if key and not any(c.isspace() for c in key) else None


def _merged(rows: list[sqlite3.Row], more: list[sqlite3.Row]) -> list[sqlite3.Row]:
    merged = {row["id"]: row for row in rows + more}
    return [merged[key] for key in sorted(merged, reverse=True)]


def month_bounds(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last day of `month`'s month."""
    first = month.replace(day=1)
    following = (first + datetime.timedelta(days=32)).replace(day=1)
    return first, following - datetime.timedelta(days=1)


def register(ledger: Ledger, month: datetime.date, limit: int | None = None) -> Found:
    """The documents taken in `month`'s month, oldest first (the register an office keeps)."""
    first, last = month_bounds(month)
    ids = queries.id_bounds(
        ledger.db, day_start(first), day_start(last + datetime.timedelta(days=1))
    )
    if ids is None:
        return Found()
    cap = limit + 1 if limit is not None else -1
    rows = queries.listing(ledger.db, ids, (), cap, newest_first=False)
    if limit is None:
        return Found(rows)
    return Found(rows[:limit], len(rows) > limit)
