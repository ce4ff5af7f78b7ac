"""Routing: which customer a document belongs to, and the deliveries planned in the ledger.

The pure parts (facts from names and FatturaPA content, the matching order) are tested alone;
the Router with a real ledger in tmp_path, a real address book file and an injected clock.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from invoice_mailer.addressbook.book import AddressBook, Customer
from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.ledger import documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.routing.customers import NOTHING_TO_LOOK_UP, find_customer
from invoice_mailer.routing.documentfacts import document_facts
from invoice_mailer.routing.planning import pair_key
from invoice_mailer.routing.router import Router
from tests.support.configs import write_config
from tests.support.fatturapa_samples import make_p7m, sample_bytes

TAKEN_AT = datetime.datetime(2026, 3, 14, 10, 30).timestamp()
TAKEN_DAY = "14/03/2026"
HEADER = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale;Invio;Preferenza"
ROSSI = "C042;Mario Rossi S.p.A.;mario@rossi.example;rossi@pec.example;IT01234567890;;;"
BETA = "C007;Beta S.r.l.;info@beta.example;;IT09876543210;;;"


def config_for(tmp_path: Path, **sections) -> Config:
    return load_config(write_config(tmp_path, **sections))


# --- facts ------------------------------------------------------------------------------


def test_pdf_facts_come_from_the_name_and_the_day_it_was_taken(tmp_path):
    config = config_for(tmp_path)
    facts = document_facts(config, "Fattura_123_2026_C042.pdf", "pdf", None, TAKEN_AT)
    assert facts["doc"] == "Fattura"
    assert facts["number"] == "123"
    assert facts["year"] == "2026"
    assert facts["customer"] == "C042"
    assert facts["date"] == TAKEN_DAY


@pytest.mark.parametrize(
    "written, expected",
    [("2026-02-03", "03/02/2026"), ("20260203", "03/02/2026"), ("03.02.2026", "03/02/2026")],
)
def test_a_date_group_in_the_pattern_gives_the_date_and_year(tmp_path, written, expected):
    pattern = r"^(?P<doc>Fattura)_(?P<number>\d+)_(?P<date>[\d.-]+)_(?P<customer>\w+)\.pdf$"
    config = config_for(tmp_path, customers={"filename": pattern})
    facts = document_facts(config, f"Fattura_5_{written}_C042.pdf", "pdf", None, TAKEN_AT)
    assert (facts["date"], facts["year"]) == (expected, "2026")


def test_a_date_group_that_is_no_date_falls_back_to_the_day_taken(tmp_path, caplog):
    pattern = r"^Fattura_(?P<number>\d+)_(?P<date>[\d-]+)\.pdf$"
    config = config_for(tmp_path, customers={"filename": pattern})
    facts = document_facts(config, "Fattura_5_2026-13-45.pdf", "pdf", None, TAKEN_AT)
    assert facts["date"] == TAKEN_DAY
    assert "'2026-13-45' in its name is not a date" in caplog.text


def test_a_name_outside_the_pattern_still_gets_template_facts(tmp_path):
    config = config_for(tmp_path)
    facts = document_facts(config, "scansione.pdf", "pdf", None, TAKEN_AT)
    assert (facts["doc"], facts["number"], facts["date"]) == ("Documento", "scansione", TAKEN_DAY)
    assert "pair" not in facts  # a number made up from the name pairs with nothing


def test_fatturapa_facts_come_from_the_content(tmp_path):
    config = config_for(tmp_path)
    xml = make_fattura_xml(
        doc_type="TD04", number="FPR 7/2026", date="2026-01-31", pec_destinatario="x@pec.it"
    )
    facts = document_facts(config, "IT01234567890_0000A.xml", "xml", xml, TAKEN_AT)
    assert facts["doc"] == "Nota di credito"
    assert (facts["number"], facts["date"], facts["year"]) == ("FPR 7/2026", "31/01/2026", "2026")
    assert facts["xml_vat"] == "IT09876543210"
    assert facts["xml_pec"] == "x@pec.it"
    assert facts["xml_name"] == "DITTA BETA"


def test_the_name_gives_doc_and_the_content_gives_number_and_date(tmp_path):
    pattern = r"^(?P<doc>Ordine)_(?P<number>\d+)_(?P<customer>\w+)\.xml$"
    config = config_for(tmp_path, customers={"filename": pattern})
    xml = make_fattura_xml(number="88", date="2025-12-30")
    facts = document_facts(config, "Ordine_1_C042.xml", "xml", xml, TAKEN_AT)
    assert (facts["doc"], facts["number"], facts["date"]) == ("Ordine", "88", "30/12/2025")
    assert facts["customer"] == "C042"


def test_a_signed_p7m_is_opened_for_its_facts(tmp_path):
    config = config_for(tmp_path)
    p7m = make_p7m(make_fattura_xml(number="9", date="2026-02-01"), "pem")
    facts = document_facts(config, "IT01234567890_0000B.xml.p7m", "p7m", p7m, TAKEN_AT)
    assert (facts["number"], facts["date"]) == ("9", "01/02/2026")
    assert facts["xml_vat"] == "IT09876543210"


def test_xml_that_is_not_fatturapa_is_known_by_its_name(tmp_path):
    pattern = r"^(?P<doc>Ordine)_(?P<number>\d+)_(?P<customer>\w+)\.xml$"
    config = config_for(tmp_path, customers={"filename": pattern})
    xml = b"<?xml version='1.0'?><ordine><numero>5</numero></ordine>"
    facts = document_facts(config, "Ordine_5_C042.xml", "xml", xml, TAKEN_AT)
    assert (facts["doc"], facts["number"], facts["customer"]) == ("Ordine", "5", "C042")
    assert "xml_vat" not in facts


def test_a_batch_lists_its_numbers_and_is_never_paired(tmp_path):
    config = config_for(tmp_path)
    xml = make_fattura_xml(invoices=[("TD01", "12", "2026-03-01"), ("TD01", "13", "2026-03-02")])
    facts = document_facts(config, "IT01234567890_0000C.xml", "xml", xml, TAKEN_AT)
    assert (facts["number"], facts["date"]) == ("12, 13", "01/03/2026")
    assert "pair" not in facts


def test_pair_keys_ignore_separators_case_leading_zeros_and_the_year():
    assert pair_key("FPR 12/2026", "2026") == pair_key("fpr-0012", "2026") == "FPR12"
    assert pair_key("123/26", "2026") == pair_key("123", "2026")
    assert pair_key("12", "2026") != pair_key("13", "2026")


# --- matching ---------------------------------------------------------------------------

BOOK = AddressBook(
    [
        Customer(
            "C042", "Rossi", ("mario@rossi.example",), ("rossi@pec.example",), "IT01234567890"
        ),
        Customer("C007", "Beta", ("info@beta.example",), (), "IT09876543210"),
        Customer("P001", "Mario Bianchi", ("mb@example.it",), tax_code="BNCMRA80A01H501U"),
        Customer("C010", "Gamma", ("g@example.it",), ("g@pec.example",), prefer="email"),
    ]
)


def match(tmp_path, facts, **customers):
    return find_customer(config_for(tmp_path, customers=customers), BOOK, facts)


def test_the_code_in_the_name_wins_over_the_xml(tmp_path):
    found = match(tmp_path, {"customer": "c042", "xml_vat": "IT09876543210"})
    assert (found.customer.code, found.looked_up) == ("C042", "code c042")


def test_an_unknown_code_falls_through_to_the_xml_vat(tmp_path):
    found = match(tmp_path, {"customer": "C999", "xml_vat": "IT09876543210"})
    assert found.customer.code == "C007"
    assert found.addresses == ("info@beta.example",)
    assert found.looked_up == "P.IVA IT09876543210"


@pytest.mark.parametrize(
    "facts, code",
    [
        ({"vat": "012 345 678 90"}, "C042"),
        ({"tax_code": "bncmra80a01h501u"}, "P001"),
        ({"xml_tax_code": "BNCMRA80A01H501U"}, "P001"),
        ({"xml_tax_code": "09876543210"}, "C007"),  # a company's CF is its P.IVA digits
        ({"xml_vat": "IT99999999999", "xml_tax_code": "09876543210"}, "C007"),
    ],
)
def test_vat_and_tax_code_lookups(tmp_path, facts, code):
    assert match(tmp_path, facts).customer.code == code


def test_a_key_on_two_rows_is_ambiguous_and_never_guessed(tmp_path):
    config = config_for(tmp_path)
    one = Customer("C1", "Rossi", emails=("a@rossi.example",), tax_code="RSSMRA80A01H501U", line=2)
    two = Customer("C2", "Rossi bis", emails=("b@rossi.example",), tax_code="RSSMRA80A01H501U")
    found = find_customer(config, AddressBook([one, two]), {"xml_tax_code": "RSSMRA80A01H501U"})
    assert (found.customer, found.addresses, found.ambiguous) == (None, (), (one, two))
    assert found.looked_up == "Codice Fiscale RSSMRA80A01H501U"
    # The same customer listed twice (the same addresses) is one customer.
    twin = Customer("C3", "Rossi", emails=("A@rossi.example",), tax_code="RSSMRA80A01H501U")
    found = find_customer(config, AddressBook([one, twin]), {"xml_tax_code": "rssmra80a01h501u"})
    assert (found.customer, found.addresses, found.ambiguous) == (one, ("a@rossi.example",), ())


def test_the_official_sample_is_found_by_its_codice_fiscale(tmp_path):
    config = config_for(tmp_path)
    data = sample_bytes("IT01234567890_FPR01.xml")
    facts = document_facts(config, "IT01234567890_FPR01.xml", "xml", data, TAKEN_AT)
    found = find_customer(config, BOOK, facts)
    assert (found.customer.code, found.looked_up) == ("C007", "Codice Fiscale 09876543210")


def test_an_email_in_the_name_is_the_recipient_itself(tmp_path):
    pattern = r"^Fattura_(?P<number>\d+)_(?P<email>[^_]+@[^_]+)\.pdf$"
    config = config_for(tmp_path, customers={"filename": pattern})
    facts = document_facts(config, "Fattura_3_nuovo@cliente.it.pdf", "pdf", None, TAKEN_AT)
    found = find_customer(config, BOOK, facts)
    assert (found.customer, found.addresses) == (None, ("nuovo@cliente.it",))
    known = find_customer(config, BOOK, {"email": "mario@rossi.example"})
    assert known.customer.code == "C042"
    assert known.addresses == ("mario@rossi.example",)  # the name's address, not the PEC


def test_pec_destinatario_only_when_allowed_and_only_last(tmp_path):
    facts = {"xml_vat": "IT55555555555", "xml_pec": "betagamma@pec.it"}
    refused = match(tmp_path, facts)
    assert refused.addresses == ()
    assert refused.looked_up == (
        "P.IVA IT55555555555, "
        "PECDestinatario betagamma@pec.it (not used: customers.use_xml_pec is off)"
    )
    allowed = match(tmp_path, facts, use_xml_pec=True)
    assert (allowed.customer, allowed.addresses) == (None, ("betagamma@pec.it",))
    known = match(tmp_path, {**facts, "xml_vat": "IT09876543210"}, use_xml_pec=True)
    assert known.addresses == ("info@beta.example",)


def test_looked_up_says_exactly_what_was_tried(tmp_path):
    facts = {"customer": "C999", "vat": "11111111111", "email": "not-an-address@"}
    found = match(tmp_path, {**facts, "xml_tax_code": "RSSMRA80A01H501U"})
    assert found.customer is None
    assert found.looked_up == (
        "code C999, P.IVA IT11111111111, e-mail not-an-address@ (not a valid address), "
        "Codice Fiscale RSSMRA80A01H501U"
    )
    assert match(tmp_path, {}).looked_up == NOTHING_TO_LOOK_UP


def test_prefer_chooses_pec_or_email_and_a_customer_may_override_it(tmp_path):
    assert match(tmp_path, {"customer": "C042"}).addresses == ("rossi@pec.example",)
    assert match(tmp_path, {"customer": "C042"}, prefer="email").addresses == (
        "mario@rossi.example",
    )
    assert match(tmp_path, {"customer": "C010"}).addresses == ("g@example.it",)
    # Only e-mail known: that is used whatever is preferred.
    assert match(tmp_path, {"customer": "C007"}).addresses == ("info@beta.example",)


# --- the Router on a real ledger --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = TAKEN_AT

    def __call__(self) -> float:
        return self.now


class Setup:
    """A config, a real address book file, a real ledger and a Router on an injected clock."""

    def __init__(self, tmp_path: Path, rows: list[str], **sections) -> None:
        self.book_path = tmp_path / "clienti.csv"
        self.write_book(rows)
        customers = {"address_book": str(self.book_path), **sections.pop("customers", {})}
        self.config = config_for(tmp_path, customers=customers, **sections)
        self.ledger = Ledger(self.config.state_dir)
        self.source = AddressBookSource(self.book_path, self.config.customers.csv)
        self.source.load()
        self.clock = Clock()
        self.router = Router(self.config, self.ledger, self.source, clock=self.clock)

    def write_book(self, rows: list[str]) -> None:
        self.book_path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    def take(self, name: str, data: bytes) -> int:
        """A document as intake leaves it: the file in spool/, a row in state taken."""
        spool = self.config.state_dir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        (spool / name).write_bytes(data)
        kind = "p7m" if name.endswith(".p7m") else name.rsplit(".", 1)[1]
        with self.ledger.transaction() as db:
            return db.execute(
                "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, "
                "taken_at, state, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'taken', ?)",
                (
                    name,
                    f"/export/{name}",
                    f"spool/{name}",
                    kind,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    self.clock.now,
                    self.clock.now,
                ),
            ).lastrowid

    def document(self, document_id: int) -> dict:
        return dict(documents.get(self.ledger.db, document_id))

    def deliveries(self) -> list[dict]:
        rows = self.ledger.query("SELECT * FROM deliveries ORDER BY id")
        result = []
        for row in rows:
            delivery = dict(row)
            for column in ("to_addrs", "cc_addrs", "bcc_addrs"):
                delivery[column] = json.loads(delivery[column])
            delivery["documents"] = [
                r[0]
                for r in self.ledger.query(
                    "SELECT document_id FROM attachments WHERE delivery_id = ? ORDER BY position",
                    row["id"],
                )
            ]
            result.append(delivery)
        return result


@pytest.fixture
def setup(tmp_path):
    made: list[Setup] = []

    def make(rows=(ROSSI, BETA), **sections) -> Setup:
        made.append(Setup(tmp_path, list(rows), **sections))
        return made[-1]

    yield make
    for each in made:
        each.ledger.close()


PDF = make_pdf()


def test_a_pdf_named_by_the_pattern_is_planned_for_its_customer(setup):
    s = setup()
    doc = s.take("Fattura_123_2026_C042.pdf", PDF)
    assert s.router.step() == 1
    (delivery,) = s.deliveries()
    assert (delivery["purpose"], delivery["state"]) == ("customer", "queued")
    assert delivery["to_addrs"] == ["rossi@pec.example"]
    assert delivery["documents"] == [doc]
    row = s.document(doc)
    assert (row["state"], row["customer_code"], row["customer_name"]) == (
        "routed",
        "C042",
        "Mario Rossi S.p.A.",
    )
    assert json.loads(row["info"])["date"] == TAKEN_DAY


def test_unknown_customer_is_held_with_the_reason_and_announced_once(setup):
    s = setup()
    doc = s.take("Fattura_9_2026_C999.pdf", PDF)
    s.router.step()
    row = s.document(doc)
    assert row["state"] == "held"
    assert row["reason"] == "no customer found in the address book (looked up code C999)"
    assert s.deliveries() == []
    s.write_book([ROSSI, BETA, "C500;Altro;altro@example.it;;;;;"])  # still not C999
    s.router.step()
    assert s.document(doc)["state"] == "held"
    notices = [r["text"] for r in s.ledger.query("SELECT text FROM notices")]
    assert notices == [f"Fattura_9_2026_C999.pdf is held: {row['reason']}"]


def test_held_documents_are_planned_when_the_address_book_gains_the_customer(setup):
    s = setup()
    doc = s.take("Fattura_9_2026_C999.pdf", PDF)
    s.router.step()
    assert s.document(doc)["state"] == "held"
    s.write_book([ROSSI, BETA, "C999;Nuovo Cliente;nuovo@cliente.it;;;;;"])
    s.router.step()  # the router itself notices the new file
    row = s.document(doc)
    assert (row["state"], row["reason"], row["customer_name"]) == ("routed", None, "Nuovo Cliente")
    assert [d["to_addrs"] for d in s.deliveries()] == [["nuovo@cliente.it"]]


def test_unknown_skip_sends_only_to_all_to(setup):
    s = setup(customers={"unknown": "skip"}, all_to={"address": "studio@commercialista.it"})
    doc = s.take("Fattura_9_2026_C999.pdf", PDF)
    s.router.step()
    row = s.document(doc)
    assert row["state"] == "routed"
    assert row["reason"] == "customer unknown (code C999); sent only to all_to"
    assert row["session_id"] is not None
    assert s.deliveries() == []


def test_a_per_customer_send_overrides_the_config(setup):
    only_xml = "C042;Rossi;mario@rossi.example;;IT01234567890;;xml;"
    s = setup([only_xml, BETA])
    pdf = s.take("Fattura_1_2026_C042.pdf", PDF)
    xml = s.take("IT01234567890_0000A.xml", make_fattura_xml(customer_vat=("IT", "01234567890")))
    other = s.take("IT01234567890_0000B.xml", make_fattura_xml(customer_vat=("IT", "09876543210")))
    s.router.step()
    assert [d["documents"] for d in s.deliveries()] == [[xml]]
    assert {s.document(d)["state"] for d in (pdf, xml, other)} == {"routed"}


def test_a_per_customer_prefer_and_the_configured_prefer(setup):
    both = "C042;Rossi;mario@rossi.example;rossi@pec.example;IT01234567890;;;email"
    s = setup([both, "C043;Verdi;v@verdi.example;verdi@pec.example;;;;"])
    s.take("Fattura_1_2026_C042.pdf", PDF)
    s.take("Fattura_2_2026_C043.pdf", PDF)
    s.router.step()
    assert [d["to_addrs"] for d in s.deliveries()] == [
        ["mario@rossi.example"],
        ["verdi@pec.example"],
    ]


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("cc", [("customer", ["rossi@pec.example"], ["archivio@example.it"], [])]),
        ("bcc", [("customer", ["rossi@pec.example"], [], ["archivio@example.it"])]),
        (
            "separate",
            [
                ("customer", ["rossi@pec.example"], [], []),
                ("copy", ["archivio@example.it"], [], []),
            ],
        ),
    ],
)
def test_copy_mode_shapes_the_delivery_rows(setup, mode, expected):
    s = setup(copy_to=["archivio@example.it"], copy_mode=mode)
    doc = s.take("Fattura_1_2026_C042.pdf", PDF)
    s.router.step()
    rows = s.deliveries()
    assert [(d["purpose"], d["to_addrs"], d["cc_addrs"], d["bcc_addrs"]) for d in rows] == expected
    assert all(d["documents"] == [doc] for d in rows)


def rossi_xml(number: str = "123", date: str = "2026-03-10", **kwargs) -> bytes:
    return make_fattura_xml(customer_vat=("IT", "01234567890"), number=number, date=date, **kwargs)


@pytest.mark.parametrize("pdf_first", [True, False])
def test_pdf_and_xml_of_one_invoice_go_in_one_message(setup, pdf_first):
    s = setup(customers={"send": ["pdf", "xml"]})
    if pdf_first:
        pdf = s.take("Fattura_123_2026_C042.pdf", PDF)
        s.router.step()
        assert s.document(pdf)["state"] == "waiting"
        xml = s.take("IT01234567890_0000A.xml", rossi_xml())
    else:
        xml = s.take("IT01234567890_0000A.xml", rossi_xml())
        s.router.step()
        assert s.document(xml)["state"] == "waiting"
        pdf = s.take("Fattura_123_2026_C042.pdf", PDF)
    s.clock.now += 1
    s.router.step()
    (delivery,) = s.deliveries()
    assert delivery["documents"] == [pdf, xml]  # the PDF first: its name heads the message
    assert delivery["to_addrs"] == ["rossi@pec.example"]
    assert {s.document(d)["state"] for d in (pdf, xml)} == {"routed"}
    # The PDF's name has no date: the invoice's own date from the XML names the message.
    assert json.loads(s.document(pdf)["info"])["date"] == "10/03/2026"


def test_same_customer_and_number_pair_across_years(setup):
    s = setup(customers={"send": ["pdf", "xml"]})
    pdf = s.take("Fattura_7_2025_C042.pdf", PDF)
    xml = s.take("IT01234567890_0000A.xml", rossi_xml(number="7/2026", date="2026-01-02"))
    s.router.step()
    assert [d["documents"] for d in s.deliveries()] == [[pdf, xml]]


def test_the_same_number_for_two_customers_is_not_a_pair(setup):
    s = setup(customers={"send": ["pdf", "xml"], "pair_wait": "30s"})
    pdf = s.take("Fattura_123_2026_C042.pdf", PDF)
    xml = s.take("IT01234567890_0000A.xml", make_fattura_xml(number="123", date="2026-03-10"))
    s.router.step()
    assert {s.document(d)["state"] for d in (pdf, xml)} == {"waiting"}
    s.clock.now += 31
    s.router.step()
    assert [(d["documents"], d["to_addrs"]) for d in s.deliveries()] == [
        ([pdf], ["rossi@pec.example"]),
        ([xml], ["info@beta.example"]),
    ]


def test_a_pdf_whose_xml_never_comes_goes_alone_after_pair_wait(setup):
    s = setup(customers={"send": ["pdf", "xml"], "pair_wait": "30s"})
    pdf = s.take("Fattura_123_2026_C042.pdf", PDF)
    s.router.step()
    assert s.document(pdf)["wait_until"] == TAKEN_AT + 30
    s.clock.now += 29
    assert s.router.step() == 0
    assert s.deliveries() == []
    s.clock.now += 1
    s.router.step()
    assert [d["documents"] for d in s.deliveries()] == [[pdf]]
    assert s.document(pdf)["state"] == "routed"


def test_a_batch_xml_goes_alone_at_once(setup):
    s = setup(customers={"send": ["pdf", "xml"]})
    batch = rossi_xml(invoices=[("TD01", "12", "2026-03-01"), ("TD01", "13", "2026-03-02")])
    xml = s.take("IT01234567890_0000C.xml", batch)
    s.router.step()
    assert [d["documents"] for d in s.deliveries()] == [[xml]]
    assert s.document(xml)["number"] == "12, 13"


def test_only_one_kind_sent_means_no_waiting(setup):
    s = setup(customers={"send": ["xml"]})
    xml = s.take("IT01234567890_0000A.xml.p7m", make_p7m(rossi_xml(), "der"))
    pdf = s.take("Fattura_123_2026_C042.pdf", PDF)
    s.router.step()
    assert [d["documents"] for d in s.deliveries()] == [[xml]]
    assert s.document(pdf)["state"] == "routed"  # not for the customer: all_to only


def test_xml_that_is_not_fatturapa_is_routed_by_name_not_failed(setup):
    pattern = r"^(?P<doc>Ordine)_(?P<number>\d+)_(?P<customer>\w+)\.xml$"
    s = setup(customers={"filename": pattern, "send": ["xml"]})
    doc = s.take("Ordine_5_C042.xml", b"<?xml version='1.0'?><ordine><n>5</n></ordine>")
    s.router.step()
    assert s.document(doc)["state"] == "routed"
    assert [d["documents"] for d in s.deliveries()] == [[doc]]
