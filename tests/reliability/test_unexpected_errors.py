"""Issue 13.1: an error nobody foresaw costs one document a readable reason, or pauses sending;
it never ends a thread while the service goes on, and never makes the service exit 0."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from invoice_mailer.addressbook.source import AddressBookSource
from invoice_mailer.config.load import load_config
from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.ledger import documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.routing.router import Router
from invoice_mailer.service import trouble as trouble_module
from tests.support.configs import write_config
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import Supervisor, query
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", "")]


def _config(tmp_path, server, **sections):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    customers = {"address_book": str(book), "prefer": "email", "send": ["pdf", "xml"]}
    customers["pair_wait"] = "0.5s"
    return service_config(tmp_path, server, customers=customers, **sections)


def test_password_smtplib_cannot_encode_pauses_sending_without_showing_it(
    tmp_path, start_smtp_server, smtp_certs
):
    """smtplib sends AUTH as ASCII: an accented password raised UnicodeEncodeError, which
    ended the sender thread (and the service, with status 0)."""
    password = "Perché-2026"
    server = start_smtp_server("starttls", users={"fatture@example.it": password})
    config = _config(
        tmp_path,
        server,
        smtp={
            "host": "localhost",
            "security": "starttls",
            "password": password,
            "ca_file": str(smtp_certs.ca),
        },
    )
    with Supervisor(config) as service:
        drop(tmp_path / "export", "Fattura_1_2026_C042.pdf", make_pdf())
        (pause,) = wait_until(lambda: query(service.state_dir, "SELECT * FROM pauses"), 20)
        assert pause["reason"] == (
            "unexpected error while sending: UnicodeEncodeError: 'ascii' codec: ordinal not in "
            "range(128) (at position 25, not shown)"
        )
        assert service.running()
        assert service.stop() == 0
    assert server.messages == []
    (delivery,) = query(service.state_dir, "SELECT state FROM deliveries")
    assert delivery["state"] == "queued"
    for secret in (password, "é", "\\xe9"):
        assert secret not in service.log()
        assert secret not in pause["reason"]


def test_file_dated_after_2262_is_taken_and_sent(tmp_path, smtp_server):
    """An mtime past 2262 does not fit SQLite's 64-bit integer (OverflowError): once the
    intake thread died of it and the service exited 0."""
    config = _config(tmp_path, smtp_server)
    with Supervisor(config) as service:
        later = drop(tmp_path / "export", ".Fattura_7_2026_C042.pdf", make_pdf())
        os.utime(later, ns=(2**63 + 5, 2**63 + 5))  # a Windows PC with its clock far ahead
        later.rename(tmp_path / "export" / "Fattura_7_2026_C042.pdf")
        (received,) = smtp_server.wait_for_messages(1, timeout=20)
        assert received.rcpt_tos == ("mario@rossi.example",)
        drop(tmp_path / "export", "Fattura_8_2026_C042.pdf", make_pdf(text="Fattura 8"))
        smtp_server.wait_for_messages(2, timeout=20)
        assert service.running()
        assert service.stop() == 0


def test_a_loop_that_keeps_failing_gives_up():
    trouble = trouble_module.Trouble("work on the queue")
    for _ in range(trouble_module.UNEXPECTED_LIMIT - 1):
        trouble.report(ValueError("bad"))
    trouble.over()  # a success in between starts the count again
    for _ in range(trouble_module.UNEXPECTED_LIMIT - 1):
        trouble.report(ValueError("bad"))
    with pytest.raises(trouble_module.GiveUp):
        trouble.report(ValueError("bad"))


@pytest.mark.parametrize("ending", ["raises", "returns"])
def test_a_thread_that_ends_stops_the_service_as_a_failure(ending, caplog):
    stop, failures = threading.Event(), []

    def loop():
        if ending == "raises":
            raise RecursionError("maximum recursion depth exceeded")

    with caplog.at_level(logging.CRITICAL):
        thread = threading.Thread(target=trouble_module.guarded(loop, stop, failures.append))
        thread.name = "worker"
        thread.start()
        thread.join()
    (failure,) = failures
    assert failure.startswith("the worker thread")
    assert "the worker thread" in caplog.text


def test_a_thread_that_ends_on_stop_is_no_failure():
    stop, failures = threading.Event(), []
    stop.set()
    thread = threading.Thread(target=trouble_module.guarded(lambda: None, stop, failures.append))
    thread.start()
    thread.join()
    assert failures == []


def test_routing_one_document_nobody_foresaw_fails_it_alone(tmp_path):
    """A taken XML whose declared encoding Python does not know (LookupError while routing:
    taken by an older version, or put back in the queue) fails alone; the next is routed."""
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = load_config(write_config(tmp_path, customers={"address_book": str(book)}))
    xml = make_fattura_xml(
        customer_vat=("IT", "01234567890"), invoices=[("TD01", "9", "2026-11-02")]
    )
    bogus = xml.replace(b'encoding="UTF-8"', b'encoding="x-bogus"')
    assert bogus != xml
    source = AddressBookSource(book, config.customers.csv)
    source.load()
    with Ledger(config.state_dir) as ledger:
        spool = config.state_dir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        ids = []
        for name, data in (
            ("IT01234567890_0000B.xml", bogus),
            ("Fattura_2_2026_C042.pdf", make_pdf()),
        ):
            (spool / name).write_bytes(data)
            with ledger.transaction() as db:
                ids.append(
                    db.execute(
                        "INSERT INTO documents(name, source, location, kind, size, mtime_ns, "
                        "sha256, taken_at, state, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, 0, '', 0, 'taken', 0)",
                        (name, f"/export/{name}", f"spool/{name}", name[-3:], len(data)),
                    ).lastrowid
                )
        assert Router(config, ledger, source).step() == 2
        bad, good = (dict(documents.get(ledger.db, i)) for i in ids)
        notices = [row[0] for row in ledger.query("SELECT text FROM notices")]
    assert (bad["state"], bad["reason"]) == (
        "failed",
        "unexpected error while routing: LookupError: unknown encoding: x-bogus",
    )
    assert good["state"] in ("routed", "waiting")
    assert notices == [f"IT01234567890_0000B.xml cannot be sent: {bad['reason']}"]
