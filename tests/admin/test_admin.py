"""`retry` and `flush` against the real service process and a real SMTP server."""

from __future__ import annotations

import signal

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.ledger.database import Ledger
from tests.support.cli import run_cli
from tests.support.configs import write_config
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book

ROSSI = ("C001", "Mario Rossi S.p.A.", "mario@rossi.example", "", "", "")
BETA = ("C002", "Beta S.r.l.", "info@beta.example", "", "", "")


def state_of(service: ServiceProcess, name: str) -> str | None:
    rows = service.query("SELECT state FROM documents WHERE name = ?", name)
    return rows[0]["state"] if rows else None


def test_retry_failed_sends_what_the_server_refused_before(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    refused, broken = "Fattura_124_2026_C002.pdf", "Fattura_125_2026_C001.pdf"
    failed = tmp_path / "state" / "failed"
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    pdf = make_pdf(size=5_000)
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", refused, pdf)
        drop(tmp_path / "export", broken, b"not a PDF at all")
        wait_until(lambda: (failed / f"{refused}.reason.txt").exists(), 15)
        wait_until(lambda: (failed / f"{broken}.reason.txt").exists(), 15)
        assert "550 5.1.1 user unknown" in (failed / f"{refused}.reason.txt").read_text()
        assert smtp_server.messages == []

        smtp_server.reset_faults()  # the customer's mailbox exists now
        retried = run_cli("-c", str(config), "retry", "--failed")
        assert retried.returncode == 1, retried.stderr  # one of the two could not be retried
        assert f"queued again: #1 {refused} (it had failed: 550 5.1.1 user unknown" in (
            retried.stdout
        )
        assert "the service acts on it within a second" in retried.stdout
        assert f"not retried: #2 {broken} still cannot be sent" in retried.stderr

        (received,) = smtp_server.wait_for_messages(1, timeout=10)
        assert received.rcpt_tos == ("info@beta.example",)
        (attachment,) = received.message.iter_attachments()
        assert attachment.get_filename() == refused and attachment.get_content() == pdf
        wait_until(lambda: list((tmp_path / "state" / "sent").rglob(refused)), 10)
        assert not (failed / refused).exists() and not (failed / f"{refused}.reason.txt").exists()
        # The refused attempt stays in the ledger; the new one had its own Message-ID.
        rows = service.query("SELECT state, message_id, last_error FROM deliveries ORDER BY id")
        assert [row["state"] for row in rows] == ["retried", "sent"]
        assert rows[0]["last_error"].startswith("550 5.1.1 user unknown")
        assert received.message["Message-ID"] == rows[1]["message_id"] != rows[0]["message_id"]
        # What the intake refuses stays failed, with its reason.
        assert (failed / broken).exists() and (failed / f"{broken}.reason.txt").exists()
        assert state_of(service, broken) == "failed"


def test_retry_held_after_the_address_book_changed_while_stopped(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    name = "Fattura_7_2026_C002.pdf"
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", name, make_pdf())
        wait_until(lambda: state_of(service, name) == "held", 15)
    write_address_book(book, [ROSSI, BETA])

    retried = run_cli("-c", str(config), "retry", "--held")
    assert retried.returncode == 0, retried.stderr
    assert f"routed again: #1 {name} (was held: no customer found" in retried.stdout
    assert "the service is not running: it acts on it when it starts" in retried.stdout
    with ServiceProcess(config):
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("info@beta.example",)


def test_retry_makes_a_deferred_message_due_now_and_the_waiting_service_acts_at_once(
    tmp_path, smtp_server
):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book)},
        retry={"attempts_now": 1, "backoff_min": "1h", "backoff_max": "2h"},
    )
    smtp_server.reject_recipient("mario@rossi.example", "451 4.3.0 mailbox busy, try later")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_5_2026_C001.pdf", make_pdf())
        wait_until(lambda: service.query("SELECT 1 FROM deliveries WHERE state = 'deferred'"), 15)
        smtp_server.reset_faults()
        # Nothing is due for an hour: the sender sleeps. The CLI writes the ledger only; the
        # service acts on it within a second (service/wakeups.py; tests/service/test_wakeups.py).
        retried = run_cli("-c", str(config), "retry")
        assert retried.returncode == 0, retried.stderr
        assert "1 deferred message(s) are due now" in retried.stdout
        (received,) = smtp_server.wait_for_messages(1, timeout=2)
        assert received.rcpt_tos == ("mario@rossi.example",)
        service.signal(signal.SIGTERM)
        code = service.stop(timeout=5)  # every thread wakes for it: none waits for a timer
    assert code == 0, service.log()


def test_retry_says_clearly_when_nothing_matched(tmp_path):
    config = write_config(tmp_path)
    missing = run_cli("-c", str(config), "retry", "--failed")
    assert missing.returncode == 1
    assert "nothing to retry: no ledger in" in missing.stderr

    Ledger(tmp_path / "state").close()
    for args, sentence in (
        (["--failed"], "no failed documents to retry"),
        (["--held", "--failed"], "no failed or held documents to retry"),
        ([], "nothing waits to be sent again"),
        (["7", "#8"], "no document with id 7, 8; `invoice-mailer status` lists them"),
    ):
        result = run_cli("-c", str(config), "retry", *args)
        assert result.returncode == 1, args
        assert sentence in result.stderr, result.stderr
    assert run_cli("-c", str(config), "retry", "x12").returncode == 2


def test_flush_closes_the_session_of_the_running_service(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book)},
        all_to={"address": "studio@commercialista.example", "session_gap": "1h"},
    )
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_9_2026_C001.pdf", make_pdf())
        smtp_server.wait_for_messages(1, timeout=15)
        shown = run_cli("-c", str(config), "status")
        assert "Tutto a:    1 document(s) since" in shown.stdout
        assert "(no new document for 3600 s)" in shown.stdout

        flushed = run_cli("-c", str(config), "flush")
        assert flushed.returncode == 0, flushed.stderr
        assert "the Tutto a session 1 (1 documents) closes within a second" in flushed.stdout
        bundle = smtp_server.wait_for_messages(2, timeout=5)[1]
        assert bundle.rcpt_tos == ("studio@commercialista.example",)
        assert [a.get_filename() for a in bundle.message.iter_attachments()] == [
            "Fattura_9_2026_C001.pdf"
        ]
        assert service.query("SELECT closed_at FROM sessions")[0]["closed_at"] is not None

        again = run_cli("-c", str(config), "flush")
        assert again.returncode == 1
        assert "no all_to session is open: nothing to flush" in again.stderr


def test_retry_one_half_of_a_refused_pdf_and_xml_pair_sends_both_again(tmp_path, smtp_server):
    beta = ("C002", "Beta S.r.l.", "info@beta.example", "", "IT09876543210", "")
    book = write_address_book(tmp_path / "clienti.csv", [beta])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "send": ["pdf", "xml"], "pair_wait": "10s"},
    )
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    pdf, xml = "Fattura_77_2026_C002.pdf", "IT01234567890_00077.xml"
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", pdf, make_pdf())
        drop(
            tmp_path / "export",
            xml,
            make_fattura_xml(
                invoices=[("TD01", "77", "2026-11-02")], customer_vat=("IT", "09876543210")
            ),
        )
        failed = tmp_path / "state" / "failed"
        wait_until(lambda: (failed / pdf).exists() and (failed / xml).exists(), 20)
        (pdf_id,) = [
            row["id"] for row in service.query("SELECT id FROM documents WHERE name = ?", pdf)
        ]

        smtp_server.reset_faults()
        retried = run_cli("-c", str(config), "retry", str(pdf_id))
        assert retried.returncode == 0, retried.stderr
        assert pdf in retried.stdout and xml in retried.stdout
        (received,) = smtp_server.wait_for_messages(1, timeout=20)
        names = sorted(a.get_filename() for a in received.message.iter_attachments())
        assert names == sorted([pdf, xml])


def test_retry_failed_sends_a_refused_accountant_bundle_again(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book)},
        all_to={"address": "studio@commercialista.example", "session_gap": "1s"},
    )
    smtp_server.reject_recipient("studio@commercialista.example", "554 5.7.1 message rejected")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_3_2026_C001.pdf", make_pdf())
        smtp_server.wait_for_messages(1, timeout=15)  # the customer's
        wait_until(
            lambda: service.query(
                "SELECT 1 FROM deliveries WHERE purpose = 'bundle' AND state = 'failed'"
            ),
            15,
        )
        shown = run_cli("-c", str(config), "status")
        assert "Tutto a, 1 document(s)" in shown.stdout
        assert "554 5.7.1 message rejected" in shown.stdout

        smtp_server.reset_faults()
        retried = run_cli("-c", str(config), "retry", "--failed")
        assert retried.returncode == 0, retried.stderr
        assert "sent again: Tutto a message" in retried.stdout
        bundle = smtp_server.wait_for_messages(2, timeout=10)[1]
        assert bundle.rcpt_tos == ("studio@commercialista.example",)
        assert [a.get_filename() for a in bundle.message.iter_attachments()] == [
            "Fattura_3_2026_C001.pdf"
        ]


def test_one_document_that_cannot_be_retried_does_not_stop_the_others(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    customers = {"address_book": str(book), "send": ["pdf", "xml"], "pair_wait": "0.5s"}
    config = service_config(tmp_path, smtp_server, customers=customers)
    refused, odd = "Fattura_31_2026_C002.pdf", "IT01234567890_00031.xml"
    failed = tmp_path / "state" / "failed"
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    odd_xml = b'<?xml version="1.0" encoding="x-unheard-of"?><FatturaElettronica/>'
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", odd, odd_xml)  # taken first: retried first
        wait_until(lambda: (failed / f"{odd}.reason.txt").exists(), 15)
        drop(tmp_path / "export", refused, make_pdf())
        wait_until(lambda: (failed / f"{refused}.reason.txt").exists(), 15)
        smtp_server.reset_faults()

        retried = run_cli("-c", str(config), "retry", "--failed")
        assert retried.returncode == 1, retried.stderr  # one could not be retried
        assert "unexpected error" not in retried.stderr and "Traceback" not in retried.stderr
        assert (
            f"not retried: #1 {odd} still cannot be sent: the file cannot be read as XML: "
            "unknown encoding: x-unheard-of"
        ) in retried.stderr
        assert f"queued again: #2 {refused}" in retried.stdout
        (received,) = smtp_server.wait_for_messages(1, timeout=15)  # what was printed happened
        assert [a.get_filename() for a in received.message.iter_attachments()] == [refused]
        assert state_of(service, odd) == "failed" and (failed / odd).exists()


def test_status_and_retry_failed_agree_on_a_failure_not_yet_filed(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [BETA])
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book)},
        all_to={"address": "studio@commercialista.example", "session_gap": "1h"},
    )
    name = "Fattura_40_2026_C002.pdf"
    smtp_server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", name, make_pdf())
        # Refused, but still in the spool: the accountant's session (1 h) is open.
        wait_until(lambda: service.query("SELECT 1 FROM deliveries WHERE state = 'failed'"), 15)
    shown = run_cli("-c", str(config), "status")
    assert f"Failed (1 document(s)):\n  #1     {name}" in shown.stdout
    assert "550 5.1.1 user unknown" in shown.stdout

    smtp_server.reset_faults()
    retried = run_cli("-c", str(config), "retry", "--failed")
    assert retried.returncode == 0, retried.stderr
    assert f"queued again: #1 {name} (it had failed: 550 5.1.1 user unknown" in retried.stdout
    assert "Failed" not in run_cli("-c", str(config), "status").stdout
