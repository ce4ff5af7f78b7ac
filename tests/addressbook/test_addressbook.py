"""The address book as an admin writes it: Excel and invoicing-program CSV exports, or YAML."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from invoice_mailer.addressbook.book import Customer, load_address_book
from invoice_mailer.addressbook.fields import normalise_tax_code, normalise_vat
from invoice_mailer.addressbook.files import heading_warnings
from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.config.model import CsvColumns, CsvConfig
from invoice_mailer.errors import EX_CONFIG, ConfigError

AUTO = CsvConfig()
HEADER = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def csv_book(tmp_path: Path, *rows: str, header: str = HEADER, config: CsvConfig = AUTO):
    return load_address_book(
        write(tmp_path / "clienti.csv", "\n".join([header, *rows]) + "\n"), config
    )


def test_bad_rows_are_reported_with_their_line_and_the_good_one_still_routes(tmp_path):
    book = csv_book(
        tmp_path,
        "C001;Rossi S.r.l.;info@rossi.it;rossi@pec.rossi.it;01234567890;",
        "C002;Bianchi;mario@;;;",
        "c001;Rossi bis;altro@rossi.it;;;",
        "C004;Verdi S.n.c.;;;09876543210;",
    )

    # c001 on line 4 is valid but repeats line 2's code: both stay, and that code is ambiguous.
    assert len(book) == 2
    assert book.by_code("C001") is None
    assert [c.line for c in book.find("code", "C001")] == [2, 4]
    assert book.by_vat("IT01234567890").addresses("pec") == ("rossi@pec.rossi.it",)
    assert book.skipped == 2
    assert [(p.line, p.key) for p in book.problems] == [
        (3, "Email"),
        (4, "Codice"),
        (5, "Email/PEC"),
    ]
    assert str(book.problems[0]) == (
        "line 3, Email: expected one e-mail address like name@example.it, got 'mario@'"
        " (customer C002 left out)"
    )
    assert str(book.problems[1]) == (
        "line 4, Codice: code c001 is already used on line 2 (C001 Rossi S.r.l.): documents "
        "identified by it are held as ambiguous until one row is corrected"
    )
    assert "no e-mail or PEC address" in str(book.problems[2])
    # A bad row is left out entirely: neither its code nor its P.IVA leads anywhere.
    assert book.by_code("C002") is None
    assert book.by_vat("IT09876543210") is None


def test_excel_csv_in_windows_1252_with_semicolons(tmp_path):
    text = (
        "Codice;RagioneSociale;Email;PEC;PartitaIVA\r\n"
        "C001;Società Agricola Rossi;info@rossi.it;;1234567890\r\n"
        "C002;Caffè Bianchi;;bianchi@pec.it;IT 098 765 43210\r\n"
    )
    book = load_address_book(write(tmp_path / "clienti.csv", text, "cp1252"), AUTO)

    assert book.problems == []
    assert book.by_code("C001").name == "Società Agricola Rossi"
    assert book.by_code("C002").name == "Caffè Bianchi"
    # Excel drops the leading zero of a P.IVA it took for a number; it is put back.
    assert book.by_vat("IT01234567890").code == "C001"
    assert book.by_vat("09876543210").code == "C002"


def test_utf8_with_bom_and_commas(tmp_path):
    text = (
        "Codice,RagioneSociale,Email,PEC\r\n"
        'C001,"Rossi, Bianchi & C. S.r.l.",info@rossi.it,\r\n'
        "C002,Perù Import,peru@example.it,\r\n"
    )
    book = load_address_book(write(tmp_path / "clienti.csv", text, "utf-8-sig"), AUTO)

    assert book.problems == []
    assert book.by_code("C001").name == "Rossi, Bianchi & C. S.r.l."
    assert book.by_code("C002").name == "Perù Import"
    assert book.by_code("C002").line == 3


def test_custom_column_names_matched_ignoring_case_and_spaces(tmp_path):
    columns = CsvColumns(
        code="Cod. Cliente", name="Denominazione", email="E-mail", pec="Posta certificata"
    )
    config = CsvConfig(delimiter=";", encoding="utf-8", columns=columns)
    header = " COD. CLIENTE ;denominazione;e-mail;Posta Certificata;Note"

    book = csv_book(
        tmp_path, "42;Neri;;neri@legalmail.it;paga a 30 giorni", header=header, config=config
    )

    assert book.by_code("42").name == "Neri"
    assert book.by_code("42").pecs == ("neri@legalmail.it",)


def test_several_addresses_in_one_cell(tmp_path):
    book = csv_book(
        tmp_path,
        'C001;Rossi;"amministrazione@rossi.it; mario@rossi.it";;;',
        '"C002";Bianchi;"a@bianchi.it, b@bianchi.it";;;',
    )

    assert book.by_code("C001").emails == ("amministrazione@rossi.it", "mario@rossi.it")
    assert book.by_code("C002").emails == ("a@bianchi.it", "b@bianchi.it")
    assert book.by_email("B@Bianchi.it").code == "C002"


def test_prefer_pec_or_email_and_the_per_customer_override(tmp_path):
    header = HEADER + ";Invio;Preferenza"
    book = csv_book(
        tmp_path,
        "C001;Both;info@rossi.it;rossi@pec.it;;;;",
        "C002;Wants email;info@verdi.it;verdi@pec.it;;;pdf,xml;Email",
        "C003;Only email;info@neri.it;;;;xml;",
        header=header,
    )
    both, wants_email, only_email = (book.by_code(c) for c in ("C001", "C002", "C003"))

    assert both.addresses("pec") == ("rossi@pec.it",)
    assert both.addresses("email") == ("info@rossi.it",)
    assert wants_email.addresses("pec") == ("info@verdi.it",)
    assert only_email.addresses("pec") == ("info@neri.it",)
    assert (both.send, wants_email.send, only_email.send) == (None, ("pdf", "xml"), ("xml",))


def test_unknown_send_or_prefer_and_empty_code_are_reported(tmp_path):
    header = HEADER + ";Invio;Preferenza"
    book = csv_book(
        tmp_path,
        "C001;A;a@a.it;;;;pdf,zip;",
        "C002;B;b@b.it;;;;;fax",
        " ;C;c@c.it;;;;;",
        "C004;D;d@d.it;;;;;pec",
        header=header,
    )

    assert [c.code for c in book] == ["C004"]
    messages = [str(p) for p in book.problems]
    assert (
        messages[0] == "line 2, Invio: expected pdf and/or xml, got 'zip' (customer C001 left out)"
    )
    assert (
        messages[1]
        == "line 3, Preferenza: expected pec or email, got 'fax' (customer C002 left out)"
    )
    assert messages[2].startswith("line 4, Codice: is empty")


def test_lingua_column_gives_each_customer_a_language_and_bad_ones_say_what_to_write(tmp_path):
    header = HEADER + ";Lingua"
    book = csv_book(
        tmp_path,
        "C001;Müller GmbH;info@mueller.de;;DE123456789;;de",
        "C002;Dupont;compta@dupont.fr;;;; FR ",  # any case, spaces around
        "C003;Rossi;info@rossi.it;;;;",  # empty: customers.language (or the XML's fallback)
        "C004;Smith;a@smith.example;;;;English",
        "C005;Silva;a@silva.example;;;;pt-BR",
        "C006;X;a@x.example;;;;xx",
        header=header,
    )

    assert [(c.code, c.language) for c in book] == [("C001", "de"), ("C002", "fr"), ("C003", None)]
    assert [str(p) for p in book.problems] == [
        "line 5, Lingua: expected a two-letter ISO 639-1 language code, got 'English'; English "
        "is en (customer C004 left out)",
        "line 6, Lingua: expected a two-letter ISO 639-1 language code, got 'pt-BR'; write pt, "
        "the language alone (without the country) (customer C005 left out)",
        "line 7, Lingua: expected a two-letter ISO 639-1 language code, got 'xx' (it, en, de, "
        "fr, es, …) (customer C006 left out)",
    ]


def test_language_column_under_another_heading_and_in_a_yaml_book(tmp_path):
    columns = CsvConfig(columns=CsvColumns(language="Sprache"))
    book = csv_book(tmp_path, "C001;A;a@a.de;;;;de", header=HEADER + ";Sprache", config=columns)
    assert book.by_code("C001").language == "de"
    path = write(
        tmp_path / "clienti.yaml",
        "- code: C001\n  email: a@a.de\n  language: DE\n"
        "- code: C002\n  email: b@b.it\n  language: tedesco\n",
    )
    book = load_address_book(path, AUTO)
    assert book.by_code("C001").language == "de"
    assert [str(p) for p in book.problems] == [
        "line 6, language: expected a two-letter ISO 639-1 language code, got 'tedesco'; German "
        "is de (customer C002 left out)"
    ]


def test_a_language_column_under_an_unmapped_heading_gets_the_mapping_to_write(tmp_path):
    path = write(tmp_path / "clienti.csv", HEADER + ";Language\nC001;A;a@a.de;;;;de\n")
    assert load_address_book(path, AUTO).by_code("C001").language is None  # not read, so:
    assert [str(p) for p in heading_warnings(path, AUTO)] == [
        "line 1, no column 'Lingua' for the customer's language; 'Language' looks like it",
        "line 1, to use the file's headings, write under customers.csv: columns: {language: "
        '"Language"}',
    ]


def test_a_customer_listed_twice_in_two_languages_is_ambiguous(tmp_path):
    book = csv_book(
        tmp_path,
        "C001;A;a@a.de;;;;de",
        "C001;A;a@a.de;;;;en",
        "C002;B;b@b.de;;;;fr",
        "C002;B;b@b.de;;;;FR",
        header=HEADER + ";Lingua",
    )
    assert len(book.find("code", "C001")) == 2  # which language? never guessed
    assert len(book.find("code", "C002")) == 1  # the same customer twice


def test_vat_with_and_without_it_and_spaces(tmp_path):
    book = csv_book(
        tmp_path,
        "C001;A;a@a.it;;IT 012 345 678 90;rssmra80a01h501u",
        "C002;B;b@b.it;;it09876543210;",
        "C003;C;c@c.it;;DE123456789;",
        "C004;D;d@d.it;;012.345.678.90;",
        "C005;E;e@e.it;;IT123;",
    )

    # C004 repeats C001's P.IVA with other addresses: both stay, and that P.IVA is ambiguous.
    assert [c.code for c in book.find("vat", "01234567890")] == ["C001", "C004"]
    assert book.by_vat("IT01234567890") is None
    assert book.by_tax_code("RSSMRA80A01H501U ").vat == "IT01234567890"
    assert book.by_vat("IT 09876543210").code == "C002"
    assert book.by_vat("DE123456789").code == "C003"
    assert [(p.line, p.key) for p in book.problems] == [(5, "PartitaIVA"), (6, "PartitaIVA")]
    assert "P.IVA IT01234567890 is already used on line 2 (C001 A)" in str(book.problems[0])
    assert "expected a P.IVA like IT01234567890" in str(book.problems[1])


def test_normalise_vat_matches_what_fatturapa_writes():
    assert normalise_vat("IT" + "01234567890") == "IT01234567890"
    assert normalise_vat("01234567890") == "IT01234567890"
    assert normalise_vat(" it 012.345.678-90 ") == "IT01234567890"
    assert normalise_vat("FR12345678901") == "FR12345678901"
    assert normalise_tax_code(" rss mra 80a01 h501u") == "RSSMRA80A01H501U"


def test_code_lookup_ignores_case_and_spaces(tmp_path):
    book = csv_book(tmp_path, "c042;Rossi;a@a.it;;;")
    assert book.by_code(" C042 ").code == "c042"
    assert book.by_code("C043") is None


def test_yaml_list_with_lines(tmp_path):
    path = write(
        tmp_path / "clienti.yaml",
        "- code: C001\n"
        "  name: Rossi S.r.l.\n"
        "  email: [info@rossi.it, amministrazione@rossi.it]\n"
        "  pec: rossi@pec.it\n"
        "  vat: '01234567890'\n"
        "  send: [pdf, xml]\n"
        "  prefer: email\n"
        "- code: C002\n"
        "  email: not-an-address\n"
        "- code: 042\n"
        "  email: x@x.it\n"
        "- code: C004\n"
        "  emial: typo@x.it\n",
    )
    book = load_address_book(path, AUTO)

    rossi = book.by_code("C001")
    assert rossi == Customer(
        code="C001",
        name="Rossi S.r.l.",
        emails=("info@rossi.it", "amministrazione@rossi.it"),
        pecs=("rossi@pec.it",),
        vat="IT01234567890",
        send=("pdf", "xml"),
        prefer="email",
        line=1,
    )
    assert rossi.addresses("pec") == ("info@rossi.it", "amministrazione@rossi.it")
    assert [(p.line, p.key) for p in book.problems] == [
        (9, "email"),
        (10, "code"),
        (12, "email/pec"),
        (13, "emial"),
    ]
    # Unquoted, 042 would become the number 34: the admin is told to quote it.
    assert "write it in quotes" in str(book.problems[1])
    assert book.skipped == 3


def test_yaml_customers_mapping(tmp_path):
    path = write(tmp_path / "clienti.yml", "customers:\n  - code: C001\n    pec: a@pec.it\n")
    book = load_address_book(path, AUTO)
    assert book.by_code("C001").line == 2


def test_missing_required_column_makes_the_file_unusable(tmp_path):
    path = write(tmp_path / "clienti.csv", "Cliente;Nome;Telefono\nC001;Rossi;06 1234\n")

    with pytest.raises(ConfigError) as caught:
        load_address_book(path, AUTO)

    assert caught.value.exit_status == EX_CONFIG
    text = str(caught.value)
    assert text.startswith(f"{path}: 2 problems")
    headings = "(headings found: 'Cliente', 'Nome', 'Telefono')"
    assert f"line 1, no column 'Codice' for the customer code {headings}" in text
    assert "no column 'Email' or 'PEC'" in text


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("clienti.csv", b"", "is empty"),
        ("clienti.csv", None, "does not exist"),
        (
            "clienti.csv",
            b"Codice;Email\nC1;\x81\x8d@x.it\n",
            "line 2, the text is neither UTF-8 nor Windows-1252",
        ),
        ("clienti.yaml", b"- code: [\n", "YAML syntax error"),
        ("clienti.yaml", b"code: C001\n", "unknown key; expected a list of customers"),
    ],
)
def test_unusable_file_is_one_clear_sentence(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_address_book(path, AUTO)


def test_source_without_a_path_is_an_empty_book():
    source = AddressBookSource(None, AUTO)
    source.load()
    assert len(source.book) == 0
    assert source.book.by_code("C001") is None
    assert source.reload_if_changed() is False


def test_source_reload_picks_up_a_new_customer(tmp_path, caplog):
    path = write(tmp_path / "clienti.csv", HEADER + "\nC001;Rossi;a@rossi.it;;;\n")
    source = AddressBookSource(path, AUTO)
    source.load()
    assert source.reload_if_changed() is False  # nothing changed

    caplog.set_level(logging.INFO, logger="invoice_mailer.addressbook.source")
    write(
        path, HEADER + "\nC001;Rossi;a@rossi.it;;;\nC002;Bianchi;b@bianchi.it;;;\nC003;Bad;x@;;;\n"
    )
    assert source.reload_if_changed() is True

    assert source.book.by_code("C002").emails == ("b@bianchi.it",)
    assert "address book reloaded: 2 customers (1 row skipped)" in caplog.messages
    assert f"{path}: line 4, Email: expected one e-mail address like name@example.it, got 'x@'" in (
        caplog.text
    )
    caplog.clear()
    assert source.reload_if_changed() is False
    assert caplog.messages == []  # problems are logged once per load, not at every check


def test_source_keeps_the_old_book_when_the_new_file_is_unusable(tmp_path, caplog):
    path = write(tmp_path / "clienti.csv", HEADER + "\nC001;Rossi;a@rossi.it;;;\n")
    source = AddressBookSource(path, AUTO)
    source.load()

    write(path, "Cliente;Nome\nC001;Rossi\n")
    assert source.reload_if_changed() is False
    assert source.book.by_code("C001").emails == ("a@rossi.it",)
    assert "no column 'Codice'" in caplog.text
    assert "keeping the previous address book (1 customers)" in caplog.text

    caplog.clear()
    assert source.reload_if_changed() is False
    assert caplog.messages == []  # the same broken file is reported once

    os.unlink(path)
    assert source.reload_if_changed() is False
    assert "does not exist" in caplog.text
    assert source.book.by_code("C001") is not None


def test_source_initial_load_refuses_an_unusable_file(tmp_path):
    source = AddressBookSource(tmp_path / "missing.csv", AUTO)
    with pytest.raises(ConfigError, match="does not exist"):
        source.load()


def test_explicit_encoding_that_does_not_fit_names_the_line(tmp_path):
    path = write(tmp_path / "clienti.csv", "Codice;Email\nC1;a@a.it\nC2;Società@x.it\n", "cp1252")
    config = CsvConfig(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 3, the text is not utf-8 \(byte"):
        load_address_book(path, config)


def test_a_key_shared_by_two_rows_is_reported_with_both_lines(tmp_path):
    book = csv_book(
        tmp_path,
        "C001;Rossi;a@rossi.it;;;RSSMRA80A01H501U",
        "C002;Rossi bis;b@rossi.it;;;rssmra80a01h501u",
        "C003;Verdi;v@verdi.it;;IT09876543210;",
        "C004;Verdi (sede);V@verdi.it;;09876543210;",
    )
    assert len(book) == 4 and book.skipped == 0
    assert [str(p) for p in book.problems] == [
        "line 3, CodiceFiscale: codice fiscale RSSMRA80A01H501U is already used on line 2 "
        "(C001 Rossi): documents identified by it are held as ambiguous until one row is "
        "corrected",
        "line 5, PartitaIVA: P.IVA IT09876543210 is already used on line 4 (C003 Verdi): the "
        "same addresses, so they count as one customer",
    ]
    assert [c.code for c in book.find("tax_code", "RSSMRA80A01H501U")] == ["C001", "C002"]
    assert book.by_tax_code("RSSMRA80A01H501U") is None
    assert book.by_vat("IT09876543210").code == "C003"  # one customer listed twice


def test_excel_sep_line_sets_the_delimiter(tmp_path):
    path = write(tmp_path / "clienti.csv", "sep=,\r\nCodice,Email\r\nC1,a@a.it\r\nC2,b@\r\n")
    book = load_address_book(path, CsvConfig(delimiter=";"))
    assert book.by_code("C1").emails == ("a@a.it",)
    assert [p.line for p in book.problems] == [4]
