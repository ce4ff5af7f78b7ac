"""`invoice-mailer status`: what an admin reads about a real ledger the real service wrote."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from invoice_mailer.admin.status import gather
from invoice_mailer.admin.statusview import fit, render_text
from invoice_mailer.config.load import load_config
from invoice_mailer.demo.samples import make_pdf
from invoice_mailer.ledger.database import Ledger
from tests.support.cli import run_cli
from tests.support.configs import write_config
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book
from tests.support.smtpserver import SmtpTestServer

CUSTOMERS = [
    ("C001", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", ""),
    ("C002", "Beta S.r.l.", "info@beta.example", "", "", ""),
    ("C003", "Gamma S.n.c.", "gamma@gamma.example", "", "", ""),
]
SENT, FAILED, DEFERRED, HELD = (
    "Fattura_123_2026_C001.pdf",
    "Fattura_124_2026_C002.pdf",
    "Fattura_125_2026_C003.pdf",
    "Fattura_126_2026_C999.pdf",
)


@dataclass(frozen=True)
class Office:
    config: Path
    message_id: str  # of the message the server accepted for invoice 123


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Office:
    """One sent, one refused (550), one deferred (451) and one held document, written by the
    real service and a real SMTP server, both stopped before the tests read the ledger.
    (Module-scoped, so the server is the plain SmtpTestServer, not the smtp_server fixture.)"""
    tmp_path = tmp_path_factory.mktemp("office")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    with SmtpTestServer("none") as server:
        server.reject_recipient("info@beta.example", "550 5.1.1 user unknown")
        server.reject_recipient("gamma@gamma.example", "451 4.3.0 mailbox busy, try later")
        config = service_config(
            tmp_path,
            server,
            customers={"address_book": str(book), "prefer": "email"},
            retry={"attempts_now": 1, "backoff_min": "1h", "backoff_max": "2h"},
        )
        with ServiceProcess(config) as service:
            for name in (SENT, FAILED, DEFERRED, HELD):
                drop(tmp_path / "export", name, make_pdf(text=name))
            (received,) = server.wait_for_messages(1, timeout=15)

            def settled() -> bool:
                states = dict(
                    (row["name"], (row["state"], row["location"][:6]))
                    for row in service.query("SELECT name, state, location FROM documents")
                )
                deferred = service.query("SELECT 1 FROM deliveries WHERE state = 'deferred'")
                return (
                    bool(deferred)
                    and states.get(FAILED) == ("failed", "failed")
                    and (
                        states.get(HELD, ("",))[0] == "held"
                        and states.get(SENT) == ("done", "sent/2")
                    )
                )

            wait_until(settled, 15)
    return Office(config, received.message["Message-ID"])


def flat(text: str) -> str:
    return " ".join(text.split())


def test_status_on_a_missing_and_on_an_empty_ledger(tmp_path):
    config = write_config(tmp_path)
    shown = run_cli("-c", str(config), "status")
    assert shown.returncode == 0, shown.stderr
    assert "the service is NOT running" in shown.stdout
    assert "Nothing has been taken yet" in shown.stdout

    Ledger(tmp_path / "state").close()
    shown = run_cli("-c", str(config), "status", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["ledger"] is True and report["service"] == "stopped"
    assert report["counts"] == {"documents": {}, "deliveries": {}}
    assert report["held"] == report["failed"] == report["deferred"] == report["sent"] == []
    text = render_text(gather(load_config(config)))
    assert "Documents:  none" in text and "Messages:   none" in text


def test_status_lists_held_failed_deferred_and_sent(office):
    shown = run_cli("-c", str(office.config), "status")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "Documents:  1 routed, 1 held, 1 done, 1 failed" in text
    held = text.split("Held, no address for the customer yet (1):")[1].split("\n\n")[0]
    assert HELD in held and "code C999" in held and "retry --held" in held
    failed = text.split("Failed (1 document(s)):")[1].split("\n\n")[0]
    assert FAILED in failed and "550 5.1.1 user unknown" in failed
    reason_file = office.config.parent / "state" / "failed" / f"{FAILED}.reason.txt"
    assert str(reason_file) in failed and reason_file.exists()
    deferred = text.split("To be sent again (deferred):")[1].split("\n\n")[0]
    assert DEFERRED in deferred and "to gamma@gamma.example" in deferred
    assert "451 4.3.0 mailbox busy" in deferred
    assert re.search(r"next try at \d\d:\d\d(;| on \d{4}-\d\d-\d\d;)", deferred), deferred
    last_sent = text.split("Last sent:")[1]
    assert f"{SENT} → mario@rossi.example" in last_sent
    # 80 columns; only full paths, which must stay copyable, may be longer.
    assert all(len(line) <= 80 for line in text.splitlines() if "/" not in line)


def test_status_json_parses_with_local_times(office):
    shown = run_cli("-c", str(office.config), "status", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["counts"]["documents"] == {"routed": 1, "held": 1, "done": 1, "failed": 1}
    assert [entry["name"] for entry in report["held"]] == [HELD]
    (failed,) = report["failed"]
    assert failed["name"] == FAILED and Path(failed["reason_file"]).exists()
    (deferred,) = report["deferred"]
    assert deferred["documents"] == [DEFERRED] and deferred["last_error"].startswith("451")
    next_attempt = datetime.datetime.fromisoformat(deferred["next_attempt_at"])
    assert next_attempt.tzinfo is not None
    assert next_attempt > datetime.datetime.now().astimezone() + datetime.timedelta(minutes=30)
    (sent,) = report["sent"]
    assert sent["to"] == ["mario@rossi.example"] and sent["message_id"] == office.message_id


def test_find_by_invoice_number_shows_every_message_with_its_message_id(office):
    shown = run_cli("-c", str(office.config), "status", "--find", "123")
    assert shown.returncode == 0, shown.stderr
    assert '1 document(s) match "123":' in shown.stdout
    assert f"{SENT}: done" in shown.stdout
    assert "customer C001 Mario Rossi S.p.A." in shown.stdout
    story = flat(shown.stdout)  # the story's lines are wrapped at 80 columns
    assert "Cliente C001 Mario Rossi S.p.A., trovato per codice C001" in story
    assert "Messaggio al cliente inviato a mario@rossi.example" in story
    assert f"Message-ID {office.message_id}" in shown.stdout

    report = gather(load_config(office.config), find="124")
    (document,) = report["documents"]
    (delivery,) = document["deliveries"]
    assert (document["name"], delivery["state"]) == (FAILED, "failed")
    assert delivery["last_error"].startswith("550 5.1.1")


def test_find_by_customer_name_or_address_ignores_case(office):
    config = load_config(office.config)
    by_name = gather(config, find="ROSSI s.p.a")
    assert [d["name"] for d in by_name["documents"]] == [SENT]
    by_address = gather(config, find="Beta.Example")
    assert [d["name"] for d in by_address["documents"]] == [FAILED]
    said = "rifiutato dal server di posta: «550 5.1.1 user unknown»"
    assert said in flat(render_text(by_address))

    nothing = run_cli("-c", str(office.config), "status", "--find", "Zeta")
    assert nothing.returncode == 1
    assert 'No document matches "Zeta".' in nothing.stdout


def test_long_names_are_shortened_in_the_middle_keeping_the_end():
    name = "Fattura_2026000123_2026_CLIENTE-CON-UN-CODICE-LUNGHISSIMO_C042.pdf"
    short = fit(name, 40)
    assert len(short) == 40 and short.startswith("Fattura_2026") and short.endswith("_C042.pdf")
    assert fit("short.pdf", 40) == "short.pdf"


@pytest.mark.parametrize("text", ['"', "%", "%_%", "\\", "[]"])
def test_find_searches_the_text_literally_not_the_stored_json(office, text):
    # '"' and "[]" are in every stored recipient list, "%" and "_" are LIKE wildcards: none of
    # these texts is in a name, number, customer or address here, so nothing matches.
    shown = run_cli("-c", str(office.config), "status", "--find", text)
    assert shown.returncode == 1, shown.stdout
    assert "No document matches" in shown.stdout
    underscore = gather(load_config(office.config), find="_124_")
    assert [d["name"] for d in underscore["documents"]] == [FAILED]


def test_escape_sequences_in_file_names_are_shown_not_obeyed(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    name = "Fattura_7_2026_C9\x1b[2J\x1b]0;pwned\x07.pdf"
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", name, make_pdf())
        wait_until(lambda: service.query("SELECT 1 FROM documents WHERE state = 'held'"), 15)
    shown = run_cli("-c", str(config), "status")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "Fattura_7_2026_C9\\x1b[2J\\x1b]0;pwned\\x07.pdf" in shown.stdout
    found = run_cli("-c", str(config), "status", "--find", "pwned")
    assert "\x1b" not in found.stdout and "C9\\x1b[2J" in found.stdout
    retried = run_cli("-c", str(config), "retry", "1")
    assert retried.returncode == 0, retried.stderr
    assert "\x1b" not in retried.stdout + retried.stderr
    assert "routed again: #1 Fattura_7_2026_C9\\x1b[2J" in retried.stdout
    dismissed = run_cli("-c", str(config), "dismiss", "1", "--note", "x")  # taken now, not held
    assert dismissed.returncode == 1
    assert "\x1b" not in dismissed.stderr and "#1 Fattura_7_2026_C9\\x1b[2J" in dismissed.stderr


def test_a_document_id_out_of_range_is_a_usage_error(tmp_path):
    config = write_config(tmp_path)
    Ledger(tmp_path / "state").close()
    for command in ("retry", "dismiss"):
        extra = ["--note", "x"] if command == "dismiss" else []
        for bad in ("99999999999999999999", "0", "-3", "1e3", "٣"):
            result = run_cli("-c", str(config), command, *extra, "--", bad)
            assert result.returncode == 2, (command, bad, result.stderr)
            assert "expected a document id like 12" in result.stderr
            assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
