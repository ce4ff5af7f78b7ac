"""A second service on the same state directory refuses to start (exit 1, one clear sentence),
and the first one goes on working as if nothing happened."""

from __future__ import annotations

import subprocess
import sys

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop
from tests.support.reliability_harness import FIGURES, Supervisor, query
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C001", "Alfa S.r.l.", "alfa@clienti.example", "", "", "")]


def test_second_instance_refuses_and_the_first_keeps_working(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path, server, customers={"address_book": str(book), "prefer": "email"}
    )
    with Supervisor(config) as first:
        second = subprocess.run(
            [sys.executable, "-m", "invoice_mailer", "-c", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        drop(tmp_path / "export", "Fattura_1_2026_C001.pdf", make_pdf(text="Fattura 1"))
        (received,) = server.wait_for_messages(1, timeout=15)
        assert first.running()
        assert (tmp_path / "state" / "lock").read_text().strip() == str(first.pid)  # untouched
        pid = first.pid
    assert second.returncode == 1, second.stderr
    message = second.stderr.strip()
    expected = f"another invoice-mailer (pid {pid}) is already running on {tmp_path / 'state'}"
    assert expected in message
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert received.rcpt_tos == ("alfa@clienti.example",)
    assert query(tmp_path / "state", "SELECT state FROM documents") == [{"state": "done"}]
    assert first.process.returncode == 0
    print(f"\nsecond instance: exit 1, {message!r}; the first sent its invoice")
    FIGURES.set("second instance", f"exit {second.returncode}: {message}")
