"""Hostile text in the address book, the templates and the config: CR/LF, header syntax,
encoded words and SMTP smuggling never change who receives a message or which headers it has.
What the server received (envelope, header block, commands) is the judge."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys

import pytest
import yaml

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.configs import base_config
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import (
    ENCODED_WORD,
    EVIL,
    FIGURES,
    HEADERS,
    HIDDEN,
    Supervisor,
    query,
    wire_headers,
)
from tests.support.service_harness import ServiceProcess, service_config

SENDER = "fatture@example.it"
COPY = "archivio@example.it"
# (code, name, email, pec, vat): C002, C004 and C005 have unusable addresses and are left out.
BOOK = [
    ("C001", f"Alfa\r\nBcc: {EVIL}\r\nX-Injected: yes", "alfa@clienti.example", "", ""),
    ("C002", "Beta", f"beta@clienti.example\r\nRCPT TO:<{EVIL}>", "", ""),
    ("C004", "Gamma", f"Gamma <{EVIL}>", "", ""),
    ("C005", "Delta", "", f'"{EVIL}"@pec.example', ""),
    ("C006", f'{ENCODED_WORD} <{EVIL}>, "Zeta\u2028Bcc: {EVIL}', "zeta@clienti.example", "", ""),
    ("C007", "Eta S.r.l.", "eta@clienti.example", "", "IT09876543210"),
]
SMUGGLING = (
    "Gentile {customer_name},\r\n.\r\nMAIL FROM:<" + EVIL + ">\r\nRCPT TO:<" + EVIL + ">\r\n"
    "DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n\n.\n\r.\r"
    "QUIT\r\n"
)


def write_book(path, rows) -> str:
    """The CSV as Excel writes it: cells with line breaks quoted."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(["Codice", "RagioneSociale", "Email", "PEC", "PartitaIVA"])
        writer.writerows(rows)
    return str(path)


def test_hostile_names_subjects_and_addresses_never_change_the_wire(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = write_book(tmp_path / "clienti.csv", BOOK)
    config = service_config(
        tmp_path,
        server,
        sender={"address": SENDER, "name": f'Rossi" <{EVIL}>, "x {ENCODED_WORD}'},
        copy_to=[COPY],
        customers={
            "address_book": book,
            "prefer": "email",
            "send": ["pdf", "xml"],
            "pair_wait": "0.5s",
        },
        templates={
            "customer_subject": "{doc} n. {number} per {customer_name}\r\nBcc: "
            + EVIL
            + "\r\nX-Injected: yes",
            "customer_body": SMUGGLING,
        },
    )
    export = tmp_path / "export"
    expected = {  # file -> the only recipients it may reach
        "Fattura_1_2026_C001.pdf": ("alfa@clienti.example", COPY),
        "Fattura_6_2026_C006.pdf": ("zeta@clienti.example", COPY),
        "IT01234567890_00005.xml": ("eta@clienti.example", COPY),
    }
    held = ["Fattura_2_2026_C002.pdf", "Fattura_4_2026_C004.pdf", "Fattura_5_2026_C005.pdf"]
    with Supervisor(config) as service:
        for name in [*expected, *held]:
            if name.endswith(".xml"):
                data = make_fattura_xml(
                    customer_vat=("IT", "09876543210"),
                    # At most 20 characters: a longer Numero fails at intake (FatturaPA schema).
                    invoices=[("TD01", "5\nBcc: e@ev.it\r\nX: y", "2026-11-02")],
                )
            else:
                data = make_pdf(text=f"{name} hostile config")
            drop(export, name, data)
        server.wait_for_messages(len(expected), timeout=20)
        wait_until(lambda: len(query(tmp_path / "state", "SELECT 1 FROM documents")) == 6, 10)
        wait_until(
            lambda: (
                {
                    r["name"]
                    for r in query(
                        tmp_path / "state", "SELECT name FROM documents WHERE state = 'held'"
                    )
                }
                == set(held)
            ),
            10,
        )
        log = service.log()

    messages = server.messages
    assert len(messages) == len(expected)
    for message in messages:
        (attachment,) = list(message.message.iter_attachments())
        name = attachment.get_filename()
        assert message.mail_from == SENDER
        assert message.rcpt_tos == expected[name], name
        fields = wire_headers(message.data)
        names = [field for field, _ in fields]
        assert sorted(names) == sorted(HEADERS | {"Cc"}), names  # each once, nothing else
        headers = dict(fields)
        assert headers["Cc"] == COPY
        assert [a.addr_spec for a in message.message["From"].addresses] == [SENDER]
        assert [a.addr_spec for a in message.message["To"].addresses] == [expected[name][0]]
        subject = message.message["Subject"]
        assert f"Bcc: {EVIL} X-Injected: yes" in subject and "\n" not in subject
        # The smuggled "." lines arrive as text of the body, not as the end of the message.
        body = message.message.get_body(("plain",)).get_content()
        assert "MAIL FROM:<" + EVIL in body and "QUIT" in body
    # An encoded word in a name stays text: decoded, it could hide CR/LF (CVE-2024-6923).
    (zeta,) = [m for m in messages if m.rcpt_tos[0] == "zeta@clienti.example"]
    assert f"= ?utf-8?b?{HIDDEN}?= <{EVIL}>" in zeta.message["Subject"]
    # one MAIL per message, one RCPT per recipient: nothing smuggled into the session
    assert server.commands.count("MAIL") == len(messages)
    assert server.commands.count("RCPT") == sum(len(m.rcpt_tos) for m in messages)
    assert EVIL not in {r for m in messages for r in m.rcpt_tos}
    # the rows with unusable addresses were left out, with their lines, and their files held
    for line in (5, 7, 8):  # physical lines: the quoted name of C001 spans three
        assert f"line {line}" in log, line
    print(
        "\nhostile address book and templates: 6 rows (3 refused), CR/LF in a name, a subject "
        "template and an XML number, encoded word, U+2028, SMTP smuggling in the body: "
        f"{len(messages)} messages, envelopes and headers as expected"
    )
    FIGURES.set(
        "hostile inputs (config, address book)",
        "CR/LF + Bcc:/X-Injected: in a customer name, a subject template and an XML <Numero>; "
        "CRLF+RCPT, '<>' and quotes in addresses (rows refused, files held); an encoded word "
        "hiding CRLF+Reply-To in a name and in sender.name; U+2028 in a name; header syntax in "
        "sender.name; SMTP smuggling (CRLF.CRLF, LF.LF, "
        "CR.CR) in the body template; CR/LF in sender.name, copy_to, all_to (config refused)",
    )


@pytest.mark.parametrize(
    "section, value",
    [
        ("sender", {"address": SENDER, "name": f"Rossi\r\nBcc: {EVIL}"}),
        ("copy_to", [f"{COPY}\r\nBcc: {EVIL}"]),
        ("copy_to", [f"{COPY}, {EVIL}"]),
        ("all_to", {"address": f"studio@example.it>\r\nRCPT TO:<{EVIL}"}),
    ],
)
def test_config_refuses_line_breaks_and_lists_in_header_fields(tmp_path, section, value):
    config = base_config(tmp_path, **{section: value})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "invoice_mailer", "-c", str(path), "check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78, result.stderr
    assert section in result.stderr and "line" in result.stderr


def billion_laughs(indent: str) -> str:
    """Nine levels of ten aliases each: 10^9 strings if anything ever expanded it."""
    lines = [f"{indent}lol0: &l0 [{', '.join(['lol'] * 10)}]"]
    lines += [f"{indent}lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_address_book_and_config_leaves_the_service_running(
    tmp_path, start_smtp_server
):
    server = start_smtp_server("none")
    book = tmp_path / "clienti.yaml"
    customer = "- code: C042\n  name: Mario Rossi\n  email: mario@rossi.example\n"
    book.write_text(customer)
    config = service_config(tmp_path, server, customers={"address_book": str(book)})
    good = config.read_text()
    with ServiceProcess(config) as service:
        wait_until(lambda: "address book loaded: 1 customers" in service.log(), 10)
        swap = tmp_path / "clienti.yaml.new"  # replaced whole, as an editor saves it
        swap.write_text(customer + billion_laughs("  "))
        swap.rename(book)
        wait_until(lambda: "keeping the previous address book (1 customers)" in service.log(), 10)
        assert f"{book}: line 4, column 9: anchors (&name) and aliases (*name)" in service.log()

        config.write_text(good + billion_laughs(""))
        service.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in service.log(), 10)
        lines = good.count("\n")
        assert f"line {lines + 1}, column 7: anchors (&name) and aliases" in service.log()

        drop(tmp_path / "export", "Fattura_1_2026_C042.pdf", make_pdf(text="Fattura 1"))
        (received,) = server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("mario@rossi.example",)
        assert service.stop(timeout=10) == 0  # SIGTERM is heard: nothing is stuck expanding
