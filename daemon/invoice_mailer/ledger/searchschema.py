"""The schema of the office's search (migration 2): two full-text indexes kept by triggers.

`search_documents` indexes what a document says about itself (file name, number, customer code
and name, and from its routing facts the document type, year, P.IVA and codice fiscale, from
the XML and from the address book); `search_deliveries` what each message says (To, Cc, Bcc,
Message-ID). Both are external-content FTS5 tables: they hold only the index, the text stays in
`documents` and `deliveries`, and the triggers keep them in step with every write, whoever
makes it. The tokenizer folds case and accents ("Società" is found as "societa").
"""

from __future__ import annotations

# One text of the routing facts (the JSON column `info`), or '' when it is missing; json_valid
# first, so that a damaged value can never make a write of the service fail in a trigger.
_FACT = (
    "coalesce(CASE WHEN json_valid({row}.info) THEN json_extract({row}.info, '$.{key}') END, '')"
)


def _fact(row: str, key: str) -> str:
    return _FACT.format(row=row, key=key)


def _vat_forms(row: str, key: str) -> str:
    """A P.IVA as written (IT01234567890) and without its country (01234567890)."""
    value = _fact(row, key)
    return f"{value} || ' ' || substr({value}, 3)"


def document_columns(row: str) -> dict[str, str]:
    """The indexed text of one documents row (`row`: d, old or new), column by column."""
    keys = " || ' ' || ".join(
        [
            _fact(row, "doc"),
            _fact(row, "year"),
            _vat_forms(row, "xml_vat"),
            _fact(row, "xml_tax_code"),
            _vat_forms(row, "customer_vat"),
            _fact(row, "customer_tax_code"),
        ]
    )
    return {
        "name": f"{row}.name",
        "number": f"coalesce({row}.number, '')",
        "code": f"coalesce({row}.customer_code, '')",
        "customer": f"coalesce({row}.customer_name, '') || ' ' || {_fact(row, 'xml_name')}",
        "keys": keys,
    }


_DOCUMENT_NAMES = ", ".join(document_columns("d"))
_DOCUMENT_VIEW = ", ".join(f"{sql} AS {name}" for name, sql in document_columns("d").items())
_DELIVERY_COLUMNS = ("to_addrs", "cc_addrs", "bcc_addrs", "message_id")
_DELIVERY_NAMES = ", ".join(_DELIVERY_COLUMNS)
_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"


def _values(columns: dict[str, str]) -> str:
    return ", ".join(columns.values())


def _old_and_new(table: str, names: str, old: str, new: str) -> tuple[str, str]:
    remove = f"INSERT INTO {table}({table}, rowid, {names}) VALUES ('delete', old.id, {old});"
    add = f"INSERT INTO {table}(rowid, {names}) VALUES (new.id, {new});"
    return remove, add


_DOC_REMOVE, _DOC_ADD = _old_and_new(
    "search_documents",
    _DOCUMENT_NAMES,
    _values(document_columns("old")),
    _values(document_columns("new")),
)
_DELIVERY_REMOVE, _DELIVERY_ADD = _old_and_new(
    "search_deliveries",
    _DELIVERY_NAMES,
    ", ".join(f"old.{c}" for c in _DELIVERY_COLUMNS),
    ", ".join(f"new.{c}" for c in _DELIVERY_COLUMNS),
)

MIGRATION = f"""
CREATE VIEW search_document_text AS SELECT d.id AS id, {_DOCUMENT_VIEW} FROM documents d;
CREATE VIRTUAL TABLE search_documents USING fts5(
    {_DOCUMENT_NAMES}, content = 'search_document_text', content_rowid = 'id', {_TOKENIZER});
CREATE TRIGGER search_documents_insert AFTER INSERT ON documents BEGIN
    {_DOC_ADD}
END;
CREATE TRIGGER search_documents_update
AFTER UPDATE OF name, number, customer_code, customer_name, info ON documents BEGIN
    {_DOC_REMOVE}
    {_DOC_ADD}
END;
CREATE TRIGGER search_documents_delete AFTER DELETE ON documents BEGIN
    {_DOC_REMOVE}
END;
INSERT INTO search_documents(search_documents) VALUES ('rebuild');

CREATE VIRTUAL TABLE search_deliveries USING fts5(
    {_DELIVERY_NAMES}, content = 'deliveries', content_rowid = 'id', {_TOKENIZER});
CREATE TRIGGER search_deliveries_insert AFTER INSERT ON deliveries BEGIN
    {_DELIVERY_ADD}
END;
CREATE TRIGGER search_deliveries_update
AFTER UPDATE OF {_DELIVERY_NAMES} ON deliveries BEGIN
    {_DELIVERY_REMOVE}
    {_DELIVERY_ADD}
END;
CREATE TRIGGER search_deliveries_delete AFTER DELETE ON deliveries BEGIN
    {_DELIVERY_REMOVE}
END;
INSERT INTO search_deliveries(search_deliveries) VALUES ('rebuild');

-- the register of a month, and a date range, by the time each document arrived
CREATE INDEX documents_taken_at ON documents(taken_at);
-- a document's story names the later copies recorded as its duplicates
CREATE INDEX documents_duplicate_of ON documents(duplicate_of) WHERE duplicate_of IS NOT NULL;
"""
