"""The office's search against a real ledger: the questions an office asks, and the ones
today's `status --find` got wrong (a number inside another, "Fattura 201", a P.IVA in the XML)."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest

from invoice_mailer.addressbook.book import AddressBook, Customer
from invoice_mailer.ledger import database, document_changes, receipts
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.receipts import StoredReceipt
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose
from invoice_mailer.office.search import Search, find, register

DAY = datetime.date(2026, 3, 10)


def at(day: datetime.date, hour: int = 10) -> float:
    return datetime.datetime.combine(day, datetime.time(hour)).timestamp()


def add(ledger, name, *, facts=None, state=DocumentState.ROUTED, taken=None, kind="pdf"):
    """A document as the service leaves it once routed: its facts and columns."""
    facts = facts or {}
    now = taken or at(DAY)
    with ledger.transaction() as db:
        document = document_changes.add(
            db,
            name=name,
            source=f"/export/{name}",
            location=f"spool/{name}",
            kind=kind,
            size=10,
            mtime_ns=1,
            sha256=name,
            state=DocumentState.TAKEN,
            reason=None,
            now=now,
        )
        document_changes.record_route(db, document, state, None, facts, now)
    return document


def deliver(ledger, document, to, message_id):
    with ledger.transaction() as db:
        delivery = db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, cc_addrs, message_id, created_at, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, 0, 0)",
            (
                Purpose.CUSTOMER,
                DeliveryState.SENT,
                json.dumps([to]),
                json.dumps(["archivio@ufficio.example"]),
                message_id,
            ),
        ).lastrowid
        db.execute(
            "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, 0)",
            (delivery, document),
        )


def pdf(number, code, name):
    return {
        "doc": "Fattura",
        "number": number,
        "year": "2026",
        "customer": code,
        "customer_code": code,
        "customer_name": name,
    }


@pytest.fixture
def office(tmp_path):
    """Invoices 201, 2010, 2026 and 1201, an XML with its P.IVA inside, one held, one old."""
    with Ledger(tmp_path / "state") as ledger:
        ids = {
            # taken first, as ids follow the time taken
            "1201": add(
                ledger,
                "Fattura_1201_2025_C044.pdf",
                facts=pdf("1201", "C044", "Verdi"),
                taken=at(DAY.replace(month=1)),
            ),
            "201": add(
                ledger,
                "Fattura_201_2026_C042.pdf",
                facts=pdf("201", "C042", "Società Rossi S.p.A."),
            ),
            "2010": add(
                ledger, "Fattura_2010_2026_C043.pdf", facts=pdf("2010", "C043", "Bianchi S.r.l.")
            ),
            "2026": add(
                ledger, "Fattura_2026_2026_C043.pdf", facts=pdf("2026", "C043", "Bianchi S.r.l.")
            ),
            "xml": add(
                ledger,
                "IT09876543210_00A01.xml",
                kind="xml",
                facts={
                    "doc": "Fattura",
                    "number": "FPR 77/2026",
                    "year": "2026",
                    "xml_vat": "IT01234567890",
                    "xml_tax_code": "RSSMRA80A01H501U",
                    "xml_name": "Gialli Srl",
                    "customer_name": "Gialli Srl",
                },
            ),
            "held": add(
                ledger,
                "Fattura_300_2026_C999.pdf",
                facts=pdf("300", "C999", ""),
                state=DocumentState.HELD,
            ),
        }
        deliver(ledger, ids["201"], "Mario@Rossi.example", "<5c1e77@fatture.example>")
        yield ledger, ids


def found(ledger, text="", **narrow) -> list[int]:
    return [row["id"] for row in find(ledger, Search(text, **narrow), 50).rows]


@pytest.mark.parametrize(
    "text", ["201", "Fattura 201", "201/2026", "fattura n. 201", "FATTURA nr 201"]
)
def test_a_number_is_a_whole_value(office, text):
    ledger, ids = office
    assert found(ledger, text) == [ids["201"]]


def test_a_year_finds_the_number_and_the_year_not_numbers_that_contain_it(office):
    ledger, ids = office
    assert ids["1201"] not in found(ledger, "201")
    assert ids["2010"] not in found(ledger, "201")
    assert found(ledger, "2010") == [ids["2010"]]
    assert ids["2026"] in found(ledger, "2026")


@pytest.mark.parametrize(
    "text", ["rossi", "ROSS", "Società Rossi", "societa", "SOCIETÀ ROSSI s.p.a"]
)
def test_a_part_of_the_name_in_any_case_and_without_accents(office, text):
    ledger, ids = office
    assert found(ledger, text) == [ids["201"]]


def test_the_customer_code_and_the_file_name(office):
    ledger, ids = office
    assert found(ledger, "c043") == [ids["2026"], ids["2010"]]
    assert found(ledger, "Fattura_2010_2026_C043.pdf") == [ids["2010"]]


@pytest.mark.parametrize(
    "text", ["IT01234567890", "01234567890", "012 345 678 90", "rssmra80a01h501u"]
)
def test_the_p_iva_and_codice_fiscale_inside_the_xml(office, text):
    ledger, ids = office
    assert found(ledger, text) == [ids["xml"]]


def test_a_p_iva_that_only_the_address_book_knows_finds_its_customers_pdfs(office):
    ledger, ids = office
    book = AddressBook(
        [Customer("C043", "Bianchi S.r.l.", ("b@bianchi.example",), vat="IT05556667770")]
    )
    rows = find(ledger, Search("IT 055 566 677 70"), 50, book).rows
    assert [row["id"] for row in rows] == [ids["2026"], ids["2010"]]
    assert find(ledger, Search("IT05556667770"), 50).rows == []  # without the book: unknown


def test_a_recipient_and_a_message_id(office):
    ledger, ids = office
    assert found(ledger, "mario@rossi.example") == [ids["201"]]
    assert found(ledger, "<5c1e77@fatture.example>") == [ids["201"]]
    assert found(ledger, "5c1e77") == [ids["201"]]


def test_a_receipts_identificativo_and_an_sdi_number_typed_whole(office):
    """The PEC provider's identificativo (every receipt of that message has it) and SdI's
    IdentificativoSdI of a notice, as receipts/recording.py stores them."""
    ledger, ids = office
    pec_id = "opec21019.20260312101532.01234.612.1.53@pec.aruba.it"
    with ledger.transaction() as db:
        delivery = db.execute(
            "SELECT delivery_id FROM attachments WHERE document_id = ?", (ids["201"],)
        ).fetchone()[0]
        for uid, kind in enumerate(("accettazione", "avvenuta-consegna"), start=1):
            stored = StoredReceipt(kind, f"receipts/{uid}.eml", kind, "INBOX", 7, uid,
                                   delivery_id=delivery, provider_id=pec_id)  # fmt: skip
            receipts.add(db, stored, at(DAY))
        notice = StoredReceipt("sdi-RC", "receipts/3.eml", "rc", "INBOX", 7, 3,
                               document_id=ids["xml"], provider_id="4501237")  # fmt: skip
        receipts.add(db, notice, at(DAY))
    assert found(ledger, pec_id) == [ids["201"]]
    assert found(ledger, f" <{pec_id.upper()}> ") == [ids["201"]]
    assert found(ledger, "4501237") == [ids["xml"]]
    assert found(ledger, "4501237", states=(DocumentState.HELD,)) == []
    assert found(ledger, "4501237", until=DAY - datetime.timedelta(days=1)) == []
    assert found(ledger, "450123") == []  # whole: a part of it is another number
    assert found(ledger, "4501237 201") == []  # every word, as everywhere else


def test_a_date_range_and_a_state_narrow_the_search(office):
    ledger, ids = office
    january = {"since": DAY.replace(month=1, day=1), "until": DAY.replace(month=1, day=31)}
    assert found(ledger, "Fattura", **january) == [ids["1201"]]
    assert found(ledger, "", **january) == [ids["1201"]]
    assert found(ledger, "", since=DAY, until=DAY, states=(DocumentState.HELD,)) == [ids["held"]]
    assert found(ledger, "Fattura", until=DAY - datetime.timedelta(days=1)) == [ids["1201"]]
    assert found(ledger, "", since=DAY + datetime.timedelta(days=1)) == []


@pytest.mark.parametrize(
    "text", ["%", '"', "*", "_%_", "\\", "[]", "NEAR(", "AND", "OR", "NOT", "^", "a:b", "(", "'"]
)
def test_what_is_typed_is_never_syntax_nor_a_wildcard(office, text):
    ledger, _ids = office
    assert found(ledger, text) == []  # no error, and never "everything"


def test_more_than_the_limit_says_so(office):
    ledger, ids = office
    result = find(ledger, Search("fattura"), 2)
    assert [row["id"] for row in result.rows] == [ids["held"], ids["xml"]] and result.more
    assert not find(ledger, Search("fattura"), 6).more


def test_the_register_of_a_month_oldest_first(office):
    ledger, ids = office
    march = register(ledger, DAY)
    assert [row["id"] for row in march.rows] == [
        ids[k] for k in ("201", "2010", "2026", "xml", "held")
    ]
    assert [row["id"] for row in register(ledger, DAY.replace(month=1)).rows] == [ids["1201"]]
    assert register(ledger, DAY.replace(month=2)).rows == []


def test_a_ledger_of_the_first_schema_is_indexed_when_upgraded(tmp_path, monkeypatch):
    """Documents written before the search existed are found after the upgrade."""
    monkeypatch.setattr(database, "SCHEMA_VERSION", 1)
    with Ledger(tmp_path / "state") as old:
        add(old, "Fattura_201_2026_C042.pdf", facts=pdf("201", "C042", "Rossi"))
        assert old.scalar("PRAGMA user_version") == 1
    monkeypatch.undo()
    with Ledger(tmp_path / "state") as upgraded:
        assert upgraded.scalar("PRAGMA user_version") == database.SCHEMA_VERSION
        assert found(upgraded, "rossi 201") == [1]
        upgraded.db.execute(
            "INSERT INTO search_documents(search_documents, rank) VALUES ('integrity-check', 1)"
        )


def test_the_indexes_follow_every_change_of_a_document(office):
    ledger, ids = office
    with ledger.transaction() as db:
        document_changes.record_route(
            db, ids["held"], DocumentState.ROUTED, None, pdf("300", "C050", "Neri"), at(DAY)
        )
    assert found(ledger, "neri") == [ids["held"]]
    assert found(ledger, "c050") == [ids["held"]]
    for table in ("search_documents", "search_deliveries"):
        ledger.db.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    with pytest.raises(sqlite3.DatabaseError):  # the check above is not vacuous
        ledger.db.execute("INSERT INTO search_documents(rowid, name) VALUES (999, 'x')")
        ledger.db.execute(
            "INSERT INTO search_documents(search_documents, rank) VALUES ('integrity-check', 1)"
        )
