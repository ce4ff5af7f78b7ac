"""The delivery stage against real aiosmtpd servers: what arrives, what the ledger says, what the
archive holds, for each row of DESIGN.md's failure table. Injected clock, zero tenacity wait."""

from __future__ import annotations

import logging
import threading

import pytest
from tenacity import wait_fixed

from invoice_mailer.config.model import RetryConfig
from invoice_mailer.delivery.retrypolicy import backoff, deferrals_so_far, quick_retry_policy
from invoice_mailer.ledger import documents, pauses
from tests.support.delivery_bench import COPY, CUSTOMER, Bench, bench_config
from tests.support.helpers import wait_until
from tests.support.smtpserver import PASSWORD, USER, free_port, with_tls_and_starttls

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n.\r\n.. a dot line\n%%EOF\n"


@with_tls_and_starttls
def test_a_delivered_message_is_the_invoice_as_the_customer_should_get_it(
    tmp_path, smtp_server, smtp_certs, benches, caplog
):
    caplog.set_level(logging.INFO)
    bench = benches(bench_config(tmp_path, smtp_server, smtp_certs, copy_to=[COPY]))
    bench.add_invoice("Fattura_123_2026_C042.pdf", PDF)
    assert bench.run() is None

    (received,) = smtp_server.wait_for_messages(1)
    assert received.tls and received.login == USER
    assert received.mail_from == "fatture@example.it"
    assert set(received.rcpt_tos) == {CUSTOMER, COPY}
    message = received.message
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Rossi S.r.l.", "fatture@example.it")
    assert message["To"] == CUSTOMER and message["Cc"] == COPY
    assert message["Subject"] == "Fattura n. 123 del 05/03/2026"
    body = message.get_body(("plain",)).get_content()
    assert body.startswith(
        "Gentile Mario Rossi S.p.A.,\nin allegato Fattura n. 123 del 05/03/2026."
    )
    assert body.endswith("\n\n-- \nRossi S.r.l. - Amministrazione\n")
    (attachment,) = message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Fattura_123_2026_C042.pdf"
    assert attachment.get_content() == PDF

    row = bench.delivery()
    assert row["state"] == "sent" and row["attempts"] == 1
    assert row["reply"].startswith("250 ") and row["message_id"] == message["Message-ID"]
    assert "sent Fattura_123_2026_C042.pdf to mario@rossi.example (cc archivio@example.it)" in (
        caplog.text
    )
    # The archive: the document and the exact message the server received, side by side.
    document, eml = bench.sent_files()
    assert document.name == "Fattura_123_2026_C042.pdf" and document.read_bytes() == PDF
    assert eml.name == "Fattura_123_2026_C042.pdf.eml" and eml.parent == document.parent
    assert eml.read_bytes() == received.data
    assert not list((bench.config.state_dir / "spool").iterdir())
    assert not list((bench.config.state_dir / "outgoing").iterdir())


@pytest.mark.parametrize("mode", ["bcc", "separate"])
def test_bcc_and_separate_copies_reach_copy_to(tmp_path, start_smtp_server, benches, mode):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[COPY], copy_mode=mode))
    bench.add_invoice()
    bench.run()
    if mode == "bcc":
        (received,) = server.wait_for_messages(1)
        assert set(received.rcpt_tos) == {CUSTOMER, COPY}
        assert "Bcc" not in received.message and "Cc" not in received.message
        assert COPY.encode() not in received.data  # a blind copy leaves no trace in the text
    else:
        customer, copy = server.wait_for_messages(2)
        assert customer.rcpt_tos == (CUSTOMER,) and copy.rcpt_tos == (COPY,)
        assert copy.message["To"] == COPY
        assert copy.message["Subject"] == customer.message["Subject"]
        (attachment,) = copy.message.iter_attachments()
        assert attachment.get_content() == b"%PDF-1.4\n%fattura\n"
    assert {row["state"] for row in bench.deliveries()} == {"sent"}


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("cert", ["self_signed", "wrong_host"])
def test_an_untrusted_certificate_sends_nothing_not_even_the_password(
    tmp_path, start_smtp_server, smtp_certs, benches, caplog, security, cert
):
    server = start_smtp_server(security, cert=getattr(smtp_certs, cert), users={USER: PASSWORD})
    bench = benches(bench_config(tmp_path, server, smtp_certs))
    bench.add_invoice()
    wait = bench.run()

    assert server.messages == []
    assert "AUTH" not in server.commands and "MAIL" not in server.commands
    assert wait == pytest.approx(300)  # paused until the periodic re-check (backoff_min)
    assert pauses.current(bench.ledger.db) is not None
    assert bench.delivery()["state"] == "queued"  # nothing failed, nothing archived
    assert bench.failed_files() == [] and bench.sent_files() == []
    assert "sending is paused" in caplog.text and "TLS certificate not accepted" in caplog.text
    assert "nothing was sent" in caplog.text


def test_no_starttls_offered_under_starttls_means_no_auth_and_no_message(
    tmp_path, start_smtp_server, smtp_certs, benches, caplog
):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    server.offer_starttls(False)
    bench = benches(bench_config(tmp_path, server, smtp_certs))
    bench.add_invoice()
    bench.run()
    assert server.commands == ["EHLO"]  # and then the client hung up: never clear text
    assert server.messages == []
    assert pauses.current(bench.ledger.db) is not None and bench.delivery()["state"] == "queued"
    assert "does not offer STARTTLS" in caplog.text and "sending is paused" in caplog.text


def test_421_on_connect_then_success_delivers_exactly_one_copy(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server))
    bench.add_invoice()
    server.refuse_connections(2)  # attempts_now is 3: the third quick try gets through
    bench.run()
    assert len(server.wait_for_messages(1)) == 1
    row = bench.delivery()
    assert row["state"] == "sent" and row["attempts"] == 3
    assert len(server.connections) == 3

    # More refusals than quick tries: deferred in the ledger, then sent once when due.
    server.drop_connections()  # the idle connection is gone: the next one is refused
    server.refuse_connections(4)
    bench.add_invoice("Fattura_124_2026_C042.pdf")
    wait = bench.run()
    second = bench.deliveries()[1]
    assert second["state"] == "deferred" and second["attempts"] == 3
    assert "421 4.3.2 Service not available" in second["last_error"]
    assert 240 <= wait <= 360  # backoff_min 5 min, ±20 %
    bench.clock.advance(wait)
    bench.run()
    assert len(server.wait_for_messages(2)) == 2
    assert bench.deliveries()[1]["state"] == "sent"
    assert len(server.messages) == 2


def test_an_unreachable_server_holds_the_whole_queue(tmp_path, start_smtp_server, benches):
    """One message spends the quick tries; the others wait for the same retry time instead of
    each hammering a server that is down (as Postfix defers a whole site)."""
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server))
    for number in range(5):
        bench.add_invoice(f"Fattura_{200 + number}_2026_C042.pdf")
    server.refuse_connections(100)
    wait = bench.run()
    assert len(server.connections) == 3  # attempts_now of the first message, nothing more
    states = [row["state"] for row in bench.deliveries()]
    assert states.count("deferred") == 1 and states.count("queued") == 4
    pause = bench.ledger.one("SELECT * FROM pauses")
    assert "the mail server cannot be reached" in pause["reason"]
    assert 240 <= wait <= 360

    server.reset_faults()
    bench.clock.advance(wait)
    bench.run()
    assert len(server.wait_for_messages(5)) == 5
    assert {row["state"] for row in bench.deliveries()} == {"sent"}
    assert bench.ledger.one("SELECT * FROM pauses") is None


def test_550_on_rcpt_fails_the_document_after_one_attempt_with_the_reply(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server))
    document = bench.add_invoice()
    server.reject_recipient(CUSTOMER, "550 5.1.1 <mario@rossi.example>: user unknown")
    bench.run()

    assert server.messages == [] and server.commands.count("MAIL") == 1
    row = bench.delivery()
    assert row["state"] == "failed" and row["attempts"] == 1
    pdf, reason = bench.failed_files()
    assert pdf.name == "Fattura_123_2026_C042.pdf" and pdf.read_bytes() == b"%PDF-1.4\n%fattura\n"
    text = reason.read_text()
    assert reason.name == "Fattura_123_2026_C042.pdf.reason.txt"
    assert "the message to mario@rossi.example (Message-ID <" in text
    assert "Server reply:  550 5.1.1 <mario@rossi.example>: user unknown" in text
    assert "Attempts:      1\n" in text and "When:          20" in text
    assert f"invoice-mailer retry {document}" in text
    assert any("Fattura_123_2026_C042.pdf was not sent" in n for n in bench.notices())


def test_535_pauses_the_queue_and_a_reload_with_the_right_password_resumes_it(
    tmp_path, start_smtp_server, smtp_certs, benches, caplog
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    config = bench_config(tmp_path, server, smtp_certs, smtp={"password": "old-password"})
    bench = benches(config)
    bench.add_invoice()
    bench.add_invoice("Fattura_124_2026_C042.pdf")
    wait = bench.run()
    assert wait == pytest.approx(300)
    assert [row["state"] for row in bench.deliveries()] == ["queued", "queued"]
    assert len(server.connections) == 1  # the second delivery did not try again
    assert "535" in caplog.text and "sending is paused" in caplog.text
    assert bench.failed_files() == []

    bench.clock.advance(wait)  # the periodic re-check: still wrong, still paused, one notice
    bench.run()
    assert len(server.connections) == 2
    assert [n for n in bench.notices() if "paused" in n] == [bench.notices()[0]]

    fixed = bench_config(tmp_path, server, smtp_certs)  # what SIGHUP does in the service
    bench.dispatcher.reload(fixed, bench.new_transport(fixed))
    bench.run()
    assert len(server.wait_for_messages(2)) == 2
    assert pauses.current(bench.ledger.db) is None
    assert [row["state"] for row in bench.deliveries()] == ["sent", "sent"]


def test_a_reply_lost_after_the_final_dot_is_resent_with_the_same_message_id(
    tmp_path, start_smtp_server, benches, caplog
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server))
    bench.add_invoice()
    server.drop_after_data(1)
    bench.run()
    first, second = server.wait_for_messages(2)
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.data == second.data  # the very same bytes, not a rebuilt message
    assert "possible duplicate" in caplog.text
    assert any(r.levelno == logging.WARNING and "possible duplicate" in r.message
               for r in caplog.records)  # fmt: skip
    row = bench.delivery()
    assert row["state"] == "sent" and row["attempts"] == 2


def test_a_line_break_in_the_customer_name_never_adds_a_recipient(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    config = bench_config(
        tmp_path, server, templates={"customer_subject": "{doc} n. {number} - {customer_name}"}
    )
    bench = benches(config)
    bench.add_invoice(customer_name="Mario Rossi\r\nBcc: x@evil.test\r\nX-Evil: 1")
    bench.run()
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == (CUSTOMER,)
    assert "Bcc" not in received.message and "X-Evil" not in received.message
    assert received.message["Subject"] == "Fattura n. 123 - Mario Rossi Bcc: x@evil.test X-Evil: 1"


def test_a_recipient_refused_among_several_the_others_still_get_it(
    tmp_path, start_smtp_server, benches, caplog
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[COPY]))
    bench.add_invoice(to=(CUSTOMER, "amministrazione@rossi.example"))
    server.reject_recipient("amministrazione@rossi.example", "550 5.1.1 no such user")
    bench.run()
    (received,) = server.wait_for_messages(1)
    assert set(received.rcpt_tos) == {CUSTOMER, COPY}
    row = bench.delivery()
    assert row["state"] == "sent"
    assert "amministrazione@rossi.example refused: 550 5.1.1 no such user" in row["last_error"]
    assert any("amministrazione@rossi.example refused" in n for n in bench.notices())
    assert "amministrazione@rossi.example refused" in caplog.text
    assert "Fattura_123_2026_C042.pdf" in [p.name for p in bench.sent_files()]


def test_when_only_the_copy_is_accepted_the_document_failed(tmp_path, start_smtp_server, benches):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[COPY]))
    bench.add_invoice()
    server.reject_recipient(CUSTOMER, "550 5.1.1 user unknown")
    bench.run()
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == (COPY,)
    assert bench.delivery()["state"] == "failed"
    names = [p.name for p in bench.failed_files()]
    assert names == ["Fattura_123_2026_C042.pdf", "Fattura_123_2026_C042.pdf.reason.txt"]
    reason = bench.failed_files()[1].read_text()
    assert "mario@rossi.example refused: 550 5.1.1 user unknown" in reason


def test_too_many_recipients_the_rest_get_the_same_message_in_a_new_transaction(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[COPY, "studio@example.it"]))
    bench.add_invoice()
    server.limit_recipients(1)  # 552 5.5.3 Too many recipients, from the second RCPT on
    bench.run()  # first transaction: the customer; then the copies, one per transaction
    messages = server.wait_for_messages(3)
    assert [m.rcpt_tos for m in messages] == [(CUSTOMER,), (COPY,), ("studio@example.it",)]
    assert len({m.data for m in messages}) == 1  # same bytes, same Message-ID, same Cc header
    assert [row["state"] for row in bench.deliveries()] == ["sent", "sent", "sent"]
    assert len({row["message_id"] for row in bench.deliveries()}) == 1
    names = [p.name for p in bench.sent_files()]
    assert "Fattura_123_2026_C042.pdf" in names  # filed once every transaction was done
    assert [p.read_bytes() for p in bench.sent_files() if p.suffix == ".eml"] == [
        messages[0].data
    ] * 3


def test_a_greylisted_customer_gets_the_same_message_after_the_backoff(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, copy_to=[COPY]))
    bench.add_invoice()
    server.reject_recipient(CUSTOMER, "450 4.2.0 greylisted, try again later")
    wait = bench.run()
    (copy,) = server.wait_for_messages(1)
    assert copy.rcpt_tos == (COPY,)
    first, rest = bench.deliveries()
    assert first["state"] == "sent" and rest["state"] == "queued"
    assert rest["to_addrs"] == f'["{CUSTOMER}"]' and 240 <= wait <= 360
    assert bench.sent_files()[0].suffix == ".eml"  # the document waits for the customer

    server.reset_faults()
    bench.clock.advance(wait)
    bench.run()
    _, customer = server.wait_for_messages(2)
    assert customer.rcpt_tos == (CUSTOMER,) and customer.data == copy.data
    assert [row["state"] for row in bench.deliveries()] == ["sent", "sent"]
    assert "Fattura_123_2026_C042.pdf" in [p.name for p in bench.sent_files()]


def test_rate_limit_per_minute_holds_with_an_injected_clock(
    tmp_path, start_smtp_server, benches, caplog
):
    caplog.set_level(logging.INFO)
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, smtp={"rate": {"per_minute": 5}}))
    for number in range(12):
        bench.add_invoice(f"Fattura_{number}_2026_C042.pdf", number=str(number))
    waits = []
    while (wait := bench.run()) is not None:
        waits.append(wait)
        bench.clock.advance(wait)
    assert len(server.wait_for_messages(12)) == 12
    assert waits == [60.0, 60.0]  # 5 now, 5 a minute later, 2 after that
    sent = sorted(row["sent_at"] for row in bench.deliveries())
    assert max(sum(t <= s < t + 60 for s in sent) for t in sent) == 5
    assert "rate limit (per minute: 5): waiting 60 s before the next message" in caplog.text


def test_transient_failures_back_off_doubling_then_fail_after_max_age(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    retry = {"attempts_now": 2, "backoff_min": "1m", "backoff_max": "4m", "max_age": "10m"}
    config = bench_config(tmp_path, server, smtp={"port": free_port()}, retry=retry)
    bench = benches(config)  # nobody listens on that port: connection refused
    bench.add_invoice()
    waits = []
    while bench.delivery()["state"] == "deferred" or not waits:
        waits.append(bench.run())
        assert len(waits) < 20
        if waits[-1] is not None:
            bench.clock.advance(waits[-1])
    row = bench.delivery()
    assert row["state"] == "failed" and row["attempts"] == 2 * len(waits)
    deferrals = waits[:-1]
    assert 48 <= deferrals[0] <= 72 and 96 <= deferrals[1] <= 144  # 1 min, 2 min, ±20 %
    assert all(60 <= w <= 240 for w in deferrals) and deferrals[-1] >= 192  # up to 4 min
    text = bench.failed_files()[1].read_text()
    assert "gave up after" in text and "Connection refused" in text


def test_stopping_during_a_quick_wait_leaves_the_delivery_due(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    config = bench_config(tmp_path, server)
    bench = Bench(config)
    try:
        bench.dispatcher.retrying = quick_retry_policy(config.retry, bench.stop, wait_fixed(600))
        server.refuse_connections(10)
        worker = threading.Thread(target=bench.dispatcher.step, name="bench-worker")
        bench.add_invoice()
        worker.start()
        wait_until(lambda: len(server.connections) == 1)
        bench.stop.set()  # what SIGTERM does: the 600 s wait ends now
        worker.join(timeout=5)
        assert not worker.is_alive()
        row = bench.delivery()
        assert row["state"] == "deferred" and "421" in row["last_error"]
        assert row["next_attempt_at"] <= bench.clock()  # due again at the next start
    finally:
        bench.close()


def test_a_message_over_max_message_size_fails_before_connecting(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, smtp={"max_message_size": "10KB"}))
    bench.add_invoice(data=b"%PDF-1.4\n" + b"x" * 20_000)
    bench.run()
    assert server.connections == []
    assert "over smtp.max_message_size" in bench.failed_files()[1].read_text()


def test_an_unreadable_document_fails_alone_and_the_queue_goes_on(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server))
    bench.add_invoice("Fattura_1_2026_C042.pdf")
    bench.add_invoice("Fattura_2_2026_C042.pdf")
    (bench.config.state_dir / documents.get(bench.ledger.db, 1)["location"]).unlink()
    bench.run()
    (received,) = server.wait_for_messages(1)
    (attachment,) = received.message.iter_attachments()
    assert attachment.get_filename() == "Fattura_2_2026_C042.pdf"
    assert [row["state"] for row in bench.deliveries()] == ["failed", "sent"]
    assert "could not be built: cannot read attachment" in bench.deliveries()[0]["last_error"]


# -- the policy itself -------------------------------------------------------------------------


def test_backoff_doubles_from_min_to_max_with_jitter_inside_the_bounds():
    retry = RetryConfig(attempts_now=3, backoff_min=300, backoff_max=3600)
    assert [backoff(retry, n, rng=lambda: 0.5) for n in range(6)] == [
        300, 600, 1200, 2400, 3600, 3600,
    ]  # fmt: skip
    for n in range(8):
        for rng in (0.0, 0.25, 0.99):
            assert 300 <= backoff(retry, n, rng=lambda r=rng: r) <= 3600
    assert backoff(retry, 1, rng=lambda: 0.0) == pytest.approx(480)
    assert backoff(retry, 1, rng=lambda: 1.0) == pytest.approx(720)
    assert [deferrals_so_far(a, 3) for a in (1, 3, 4, 6, 7)] == [0, 0, 1, 1, 2]


def test_after_a_crash_in_the_rfc_1047_window_a_busy_server_then_a_loss_is_unconfirmed(
    tmp_path, start_smtp_server, benches
):
    server = start_smtp_server("none")
    bench = benches(bench_config(tmp_path, server, retry={"attempts_now": 1}))
    bench.add_invoice()
    with bench.ledger.transaction() as db:  # as a crash between DATA and the reply leaves it
        db.execute("UPDATE deliveries SET state = 'sending'")
    server.refuse_connections(1)
    bench.run()
    assert bench.delivery()["state"] == "sending"  # waiting, and the lost reply is remembered
    server.drop_after_data(1)
    bench.clock.advance(3600)
    bench.run()  # the one resend: its reply is lost too
    bench.clock.advance(3600)
    bench.run()
    assert len(server.wait_for_messages(1)) == 1 and len(server.messages) == 1
    row = bench.delivery()
    assert (
        row["state"] == "unconfirmed"
        and "no readable reply after the final '.'" in row["last_error"]
    )
    (notice,) = bench.notices()
    assert "is unconfirmed" in notice and "invoice-mailer retry 1" in notice
    assert bench.sent_files()  # the document is filed: the server most likely has it
