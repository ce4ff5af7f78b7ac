"""Duplicates, re-exports and ambiguous customers, end to end: the real service process, a real
SMTP server, files dropped in the export folder, and the real CLI reading what happened.

What the customer notices: a corrected re-export reaches them, the same file for a second
customer reaches that customer, and nothing is guessed when two rows claim one customer.
"""

from __future__ import annotations

import json

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.cli import run_cli
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book

ROSSI = ("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", "")
BETA = ("C007", "Beta S.r.l.", "info@beta.example", "", "IT09876543210", "")


def document(service: ServiceProcess, name: str) -> dict | None:
    rows = service.query("SELECT * FROM documents WHERE name = ? ORDER BY id DESC", name)
    return rows[0] if rows else None


def status_json(config) -> dict:
    shown = run_cli("-c", str(config), "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_a_held_invoice_re_exported_under_the_right_code_is_sent_and_the_held_one_closed(
    tmp_path, smtp_server
):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    pdf = make_pdf(text="Fattura 8")
    wrong, right = "Fattura_8_2026_C999.pdf", "Fattura_8_2026_C042.pdf"
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", wrong, pdf)
        wait_until(lambda: (document(service, wrong) or {}).get("state") == "held", 15)
        drop(tmp_path / "export", right, pdf)  # the same bytes, under the corrected name
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("mario@rossi.example",)
        (attachment,) = received.message.iter_attachments()
        assert (attachment.get_filename(), attachment.get_content()) == (right, pdf)
        old = wait_until(
            lambda: (
                (d := document(service, wrong))
                and d["state"] == "superseded"
                and d["moving_to"] is None  # closed first, then the file moves (closing.py)
                and d
            ),
            15,
        )
        new_id = document(service, right)["id"]
        assert old["reason"].startswith(f"superseded by document {new_id} ({right})")
        # Kept, not deleted: the file moved from the spool to closed/YYYY/MM/.
        kept = tmp_path / "state" / old["location"]
        assert old["location"].startswith("closed/") and kept.read_bytes() == pdf
        assert not list((tmp_path / "state" / "spool").glob("*C999*"))
    report = status_json(config)
    assert report["held"] == [] and report["counts"]["documents"]["superseded"] == 1


def test_the_same_file_for_a_second_customer_reaches_that_customer_too(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    pdf = make_pdf(text="Listino prezzi 2026")
    with ServiceProcess(config):
        drop(tmp_path / "export", "Ordine_5_2026_C042.pdf", pdf)
        smtp_server.wait_for_messages(1, timeout=15)
        drop(tmp_path / "export", "Ordine_5_2026_C007.pdf", pdf)
        first, second = smtp_server.wait_for_messages(2, timeout=15)
    assert (first.rcpt_tos, second.rcpt_tos) == (("mario@rossi.example",), ("info@beta.example",))


def test_the_same_content_already_sent_to_the_same_customer_is_not_sent_again(
    tmp_path, smtp_server
):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    pdf = make_pdf(text="Fattura 9")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_9_2026_C042.pdf", pdf)
        smtp_server.wait_for_messages(1, timeout=15)
        wait_until(lambda: service.query("SELECT 1 FROM deliveries WHERE state = 'sent'"), 10)
        drop(tmp_path / "export", "Fattura_9-copia_2026_C042.pdf", pdf)
        again = wait_until(
            lambda: (
                (d := document(service, "Fattura_9-copia_2026_C042.pdf"))
                and d["state"] == "done"
                and d
            ),
            15,
        )
        assert again["duplicate_of"] == 1
        assert again["reason"].startswith(
            "same content as document 1 (Fattura_9_2026_C042.pdf), already sent to "
            "mario@rossi.example on "
        )
        assert len(smtp_server.messages) == 1


def test_a_failure_fixed_by_a_corrected_file_leaves_the_failed_list(tmp_path, smtp_server):
    beta = ("C007", "Beta S.r.l.", "info@beta.example", "", "", "")
    book = write_address_book(tmp_path / "clienti.csv", [beta])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    name = "Fattura_124_2026_C007.pdf"
    failed = tmp_path / "state" / "failed"
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", name, make_pdf(text="first"))
        wait_until(lambda: (failed / f"{name}.reason.txt").exists(), 15)
        assert status_json(config)["failed_count"] == 1
        # The admin corrects the address and exports the invoice again.
        write_address_book(book, [("C007", "Beta S.r.l.", "amm@beta.example", "", "", "")])
        wait_until(lambda: "address book reloaded" in service.log(), 10)
        drop(tmp_path / "export", name, make_pdf(text="second"))
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("amm@beta.example",)
        old = wait_until(
            lambda: (
                (d := service.query("SELECT * FROM documents WHERE id = 1")[0])
                and d["state"] == "superseded"
                and d["moving_to"] is None  # closed first, then the file moves (closing.py)
                and d
            ),
            15,
        )
    assert old["reason"].startswith(f"superseded by document 2 ({name})")
    assert "550 5.1.1 user unknown" in old["reason"]  # what happened before stays told
    assert not (failed / name).exists() and not (failed / f"{name}.reason.txt").exists()
    kept = tmp_path / "state" / old["location"]
    assert kept.exists() and kept.with_name(kept.name + ".reason.txt").exists()
    report = status_json(config)
    assert report["failed"] == [] and report["failed_count"] == 0
    retried = run_cli("-c", str(config), "retry", "--failed")
    assert retried.returncode == 1
    assert "no failed documents to retry" in retried.stderr


def test_dismiss_closes_a_held_document_by_hand_with_a_note(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    name = "Fattura_3_2026_C555.pdf"
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", name, make_pdf())
        wait_until(lambda: (document(service, name) or {}).get("state") == "held", 15)
        no_note = run_cli("-c", str(config), "dismiss", "1")
        assert no_note.returncode == 2 and "--note" in no_note.stderr

        dismissed = run_cli(
            "-c", str(config), "dismiss", "1", "--note", "cliente cessato, consegnata a mano"
        )
        assert dismissed.returncode == 0, dismissed.stderr
        assert f"dismissed: #1 {name} (it was held: no customer found" in dismissed.stdout
        row = document(service, name)
    assert row["state"] == "dismissed"
    assert row["reason"].startswith("dismissed by hand: cliente cessato, consegnata a mano")
    assert (tmp_path / "state" / row["location"]).exists() and row["location"].startswith("closed/")
    shown = run_cli("-c", str(config), "status")
    assert "Held" not in shown.stdout and "1 dismissed" in shown.stdout
    again = run_cli("-c", str(config), "dismiss", "1", "--note", "twice")
    assert again.returncode == 1
    assert f"#1 {name} is dismissed, not failed or held: nothing to dismiss" in again.stderr
    assert smtp_server.messages == []


def test_a_codice_fiscale_on_two_rows_holds_the_invoice_as_ambiguous(tmp_path, smtp_server):
    tax_code = "RSSMRA80A01H501U"
    mario = ("C010", "Mario Rossi", "mario@rossi.example", "", "", tax_code)
    other = ("C011", "Rossi Mario ditta", "ditta@rossi.example", "", "", tax_code)
    book = write_address_book(tmp_path / "clienti.csv", [mario, other])
    customers = {"address_book": str(book), "send": ["xml"]}
    config = service_config(tmp_path, smtp_server, customers=customers)

    checked = run_cli("-c", str(config), "check")
    assert checked.returncode == 0, checked.stderr
    assert (
        "line 3, CodiceFiscale: codice fiscale RSSMRA80A01H501U is already used on line 2 "
        "(C010 Mario Rossi): documents identified by it are held as ambiguous"
    ) in checked.stderr

    xml = make_fattura_xml(customer_vat=None, customer_tax_code=tax_code, number="7")
    name = "IT01234567890_00007.xml"
    with ServiceProcess(config) as service:
        assert "is already used on line 2" in service.log()  # logged at load too
        drop(tmp_path / "export", name, xml)
        held = wait_until(lambda: (d := document(service, name)) and d["state"] == "held" and d, 15)
        assert held["reason"] == (
            f"ambiguous: Codice Fiscale {tax_code} is on 2 rows of the address book: "
            "C010 Mario Rossi (line 2) and C011 Rossi Mario ditta (line 3); "
            "correct the address book (reloaded by itself)"
        )
        # The same customer listed twice with the same address is one customer: sent.
        write_address_book(book, [mario, (*other[:2], "mario@rossi.example", *other[3:])])
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
    assert received.rcpt_tos == ("mario@rossi.example",)


def test_the_same_file_already_in_a_sent_accountant_bundle_is_not_bundled_again(
    tmp_path, smtp_server
):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "send": ["pdf"]},
        all_to={"address": "studio@commercialista.example", "session_gap": "0.5s"},
    )
    xml = make_fattura_xml(customer_vat=("IT", "01234567890"), number="12")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "IT01234567890_00012.xml", xml)
        (bundle,) = smtp_server.wait_for_messages(1, timeout=15)
        assert bundle.rcpt_tos == ("studio@commercialista.example",)
        wait_until(lambda: service.query("SELECT 1 FROM deliveries WHERE state = 'sent'"), 10)
        drop(tmp_path / "export", "IT01234567890_00012-bis.xml", xml)
        again = wait_until(
            lambda: (
                (d := document(service, "IT01234567890_00012-bis.xml"))
                and d["state"] == "done"
                and d
            ),
            15,
        )
    assert "already sent to studio@commercialista.example" in again["reason"]
    assert len(smtp_server.messages) == 1


def test_dismiss_closes_a_failure_and_keeps_its_files_and_reason(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [BETA])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    name = "Fattura_60_2026_C007.pdf"
    failed = tmp_path / "state" / "failed"
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    with ServiceProcess(config):
        drop(tmp_path / "export", name, make_pdf())
        wait_until(lambda: (failed / f"{name}.reason.txt").exists(), 15)
        dismissed = run_cli("-c", str(config), "dismiss", "#1", "--note", "consegnata a mano")
    assert dismissed.returncode == 0, dismissed.stderr
    assert f"dismissed: #1 {name} (it was failed: 550 5.1.1 user unknown" in dismissed.stdout
    (kept,) = (tmp_path / "state" / "closed").rglob(name)
    assert kept.with_name(f"{name}.reason.txt").exists()
    note = kept.with_name(f"{name}.closed.txt").read_text()
    assert "dismissed by hand: consegnata a mano (it was failed: 550 5.1.1" in note
    assert not (failed / name).exists() and not (failed / f"{name}.reason.txt").exists()
    report = status_json(config)
    assert report["failed"] == [] and report["counts"]["documents"] == {"dismissed": 1}
    assert run_cli("-c", str(config), "retry", "--failed").returncode == 1
