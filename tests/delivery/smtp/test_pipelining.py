"""PIPELINING (RFC 2920): where the server offers it, MAIL, every RCPT and DATA go in one write
and their replies are read in order; refusals mean what they mean without it, and the session
stays in step for the next message."""

from __future__ import annotations

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.session import SmtpTransport
from tests.delivery.smtp.test_smtp import (
    CLIENT_NAME,
    config_for,
    failure_of,
    make_eml,
    send_one,
)
from tests.support.smtpserver import PASSWORD, USER

TO = ("mario@rossi.it", "studio@commercialista.it")


def test_the_envelope_goes_in_one_write_where_pipelining_is_offered(start_rogue_server, tmp_path):
    """This server answers MAIL and RCPT only once DATA has arrived: a client that waited for
    each reply would time out (smtp.timeout 5 s) instead of delivering."""
    server = start_rogue_server("ok", withhold_until_data=True)
    config = SmtpConfig(host="127.0.0.1", security="none", port=server.port, timeout=5.0)
    with SmtpTransport(config, None, CLIENT_NAME) as transport:
        first = send_one(transport, make_eml(tmp_path, "a.eml"), TO)
        second = send_one(transport, make_eml(tmp_path, "b.eml"), TO[:1])
    assert first.accepted == TO and second.accepted == TO[:1]
    assert [m.rcpt_tos for m in server.messages] == [TO, TO[:1]]
    assert server.connections == 1


def test_a_refused_recipient_is_read_in_its_place_and_the_others_get_the_message(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("tls", users={USER: PASSWORD}, pipelining=True)
    server.reject_recipient("nobody@rossi.it")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        result = send_one(transport, make_eml(tmp_path), ("nobody@rossi.it", *TO))
        send_one(transport, make_eml(tmp_path, "next.eml"))
    assert result.accepted == TO
    assert result.refused == {"nobody@rossi.it": (550, "5.1.1 user unknown")}
    first, second = server.wait_for_messages(2)
    assert (first.rcpt_tos, second.rcpt_tos) == (TO, ("mario@rossi.it",))
    assert len(server.connections) == 1


def test_every_recipient_refused_sends_no_message_and_the_session_goes_on(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("tls", users={USER: PASSWORD}, pipelining=True)
    server.reject_recipient("nobody@rossi.it")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path), ("nobody@rossi.it",))
        send_one(transport, make_eml(tmp_path, "next.eml"))
    assert (failure.kind, failure.phase, failure.code) == ("permanent", "rcpt", 550)
    assert failure.refused == {"nobody@rossi.it": (550, "5.1.1 user unknown")}
    (received,) = server.wait_for_messages(1)
    assert received.message["Subject"] == "Fattura next.eml"
    assert len(server.connections) == 1


def test_a_refused_mail_from_is_the_failure_not_the_replies_that_follow_it(
    start_smtp_server, smtp_certs, tmp_path
):
    """No login on a server that wants one: 530 to MAIL, then 503s to RCPT and DATA."""
    server = start_smtp_server("starttls", users={USER: PASSWORD}, pipelining=True)
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path), TO)
    assert (failure.kind, failure.phase, failure.code) == ("auth", "mail", 530)
    assert server.messages == []


def test_too_many_recipients_defers_each_one_refused(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("tls", users={USER: PASSWORD}, pipelining=True)
    server.limit_recipients(1)
    to = (*TO, "archivio@example.it")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        result = send_one(transport, make_eml(tmp_path), to)
    assert result.accepted == to[:1]
    assert result.deferred == result.refused and set(result.refused) == set(to[1:])
    assert server.commands.count("RCPT") == 3  # all were in the one write
    assert server.wait_for_messages(1)[0].rcpt_tos == to[:1]
