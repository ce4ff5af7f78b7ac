"""End to end "Tutto a": the real service process, a real SMTP server, files dropped in waves,
and the accountant's bundles as they arrive."""

from __future__ import annotations

from invoice_mailer.bundles import sessions
from invoice_mailer.demo.samples import make_pdf
from invoice_mailer.ledger.database import Ledger
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book

STUDIO = "studio@commercialista.it"
CUSTOMERS = [
    ("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", ""),
]


def drop_all(folder, documents: dict[str, bytes]) -> None:
    """A wave of files, each written as the invoicing program does (helpers.drop)."""
    for name, data in documents.items():
        drop(folder, name, data)


def invoices(first: int, count: int, customer: str = "C042", size: int = 20_000):
    return {
        f"Fattura_{n}_2026_{customer}.pdf": make_pdf(size=size + n, text=f"Fattura {n}")
        for n in range(first, first + count)
    }


def bundles(server):
    return [m for m in server.messages if STUDIO in m.rcpt_tos]


def attachments(received) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in received.message.iter_attachments():
        assert part.get_filename() not in found, "a document attached twice"
        found[part.get_filename()] = part.get_content()
    return found


def joined(service: ServiceProcess, count: int):
    return lambda: (
        len(service.query("SELECT id FROM documents WHERE session_id IS NOT NULL")) >= count
    )


def flush(service: ServiceProcess) -> None:
    """What `invoice-mailer flush` does: ask the running service to close the session."""
    with Ledger(service.state_dir) as ledger:
        assert sessions.request_close(ledger) is not None


def config_for(tmp_path, server, *, book=True, smtp=None, **all_to):
    customers = {"unknown": "skip"}
    if book:
        path = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
        customers = {"address_book": str(path), "prefer": "email"}
    return service_config(
        tmp_path, server, smtp=smtp or {}, customers=customers, all_to={"address": STUDIO, **all_to}
    )


def test_two_waves_within_the_gap_make_one_bundle_and_a_later_wave_another(tmp_path, smtp_server):
    config = config_for(tmp_path, smtp_server, session_gap="2s")
    folder = tmp_path / "export"
    first, second, third = invoices(1, 4), invoices(5, 3), invoices(8, 2)
    with ServiceProcess(config) as service:
        drop_all(folder, first)
        wait_until(joined(service, 4), 10)
        drop_all(folder, second)  # well within session_gap of the first wave
        (bundle,) = wait_until(lambda: bundles(smtp_server), 15)
        assert attachments(bundle) == {**first, **second}
        assert bundle.message["Subject"].endswith("(7)")
        assert "In allegato 7 documenti:" in bundle.message.get_body().get_content()
        drop_all(folder, third)
        wait_until(lambda: len(bundles(smtp_server)) == 2, 15)
        assert attachments(bundles(smtp_server)[1]) == third
        # Every file was also sent to its customer, then archived once both were done.
        archived = lambda: len(list((tmp_path / "state" / "sent").rglob("Fattura_*.pdf"))) == 9  # noqa: E731
        wait_until(archived, 10)
    customers = [m for m in smtp_server.messages if "mario@rossi.example" in m.rcpt_tos]
    assert len(customers) == 9


def test_flush_closes_at_once_and_a_held_document_is_in_the_bundle(tmp_path, smtp_server):
    config = config_for(tmp_path, smtp_server, session_gap="1h")
    known, unknown = invoices(1, 1), invoices(2, 1, customer="C999")
    with ServiceProcess(config) as service:
        drop_all(tmp_path / "export", {**known, **unknown})
        smtp_server.wait_for_messages(1, timeout=10)  # the known customer's invoice
        wait_until(lambda: service.query("SELECT id FROM documents WHERE state = 'held'"), 10)
        wait_until(lambda: service.query("SELECT id FROM deliveries WHERE state = 'sent'"), 10)
        assert bundles(smtp_server) == []
        flush(service)
        (bundle,) = wait_until(lambda: bundles(smtp_server), 5)
        assert attachments(bundle) == {**known, **unknown}
        body = bundle.message.get_body().get_content()
        assert "Fattura_1_2026_C042.pdf (PDF) - Fattura n. 1" in body
        assert "Mario Rossi S.p.A. - inviato a mario@rossi.example" in body
        assert "Fattura_2_2026_C999.pdf (PDF) - Fattura n. 2" in body
        assert "in attesa: cliente sconosciuto (cercato per codice C999)" in body


def test_a_session_larger_than_max_message_size_arrives_in_parts(tmp_path, smtp_server):
    limit = 400_000
    config = config_for(
        tmp_path, smtp_server, book=False, smtp={"max_message_size": limit}, session_gap="1h"
    )
    documents = invoices(1, 7, size=100_000)
    with ServiceProcess(config) as service:
        drop_all(tmp_path / "export", documents)
        wait_until(joined(service, 7), 10)
        flush(service)
        first = wait_until(lambda: bundles(smtp_server), 10)[0]
        parts = int(first.message["Subject"].rsplit(" di ", 1)[1])
        assert parts > 1
        received = wait_until(
            lambda: len(bundles(smtp_server)) == parts and bundles(smtp_server), 15
        )
    seen: dict[str, bytes] = {}
    for message in received:
        assert len(message.data) <= limit
        assert " - parte " in message.message["Subject"]
        for name, data in attachments(message).items():
            assert name not in seen, f"{name} is in two parts"
            seen[name] = data
    assert seen == documents
    subjects = sorted(m.message["Subject"].rsplit(" - ", 1)[1] for m in received)
    assert subjects == [f"parte {n} di {parts}" for n in range(1, parts + 1)]


def test_sigkill_with_an_open_session_then_restart_sends_one_bundle_with_every_member(
    tmp_path, smtp_server
):
    config = config_for(tmp_path, smtp_server, session_gap="1h")
    before, after = invoices(1, 3), invoices(4, 1)
    service = ServiceProcess(config).start()
    try:
        drop_all(tmp_path / "export", before)
        wait_until(joined(service, 3), 10)
    finally:
        service.kill()
    with ServiceProcess(config) as service:
        drop_all(tmp_path / "export", after)
        wait_until(joined(service, 4), 10)
        flush(service)
        (bundle,) = wait_until(lambda: bundles(smtp_server), 10)
        assert attachments(bundle) == {**before, **after}
        done = "SELECT id FROM documents WHERE state = 'done'"
        wait_until(lambda: len(service.query(done)) == 4, 15)
        assert len(service.query("SELECT id FROM sessions")) == 1
        assert len(service.query("SELECT id FROM deliveries WHERE purpose = 'bundle'")) == 1
    assert len(bundles(smtp_server)) == 1
