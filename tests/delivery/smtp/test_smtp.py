"""SmtpTransport against real aiosmtpd servers (tests/support/smtpserver.py), and the pure
classifier."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.outcome import SendResult, SmtpFailure, classify
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.delivery.smtp.wire import CHUNK_SIZE, dot_stuff
from invoice_mailer.demo.tlscerts import TestCerts
from tests.support.smtpserver import (
    PASSWORD,
    USER,
    SmtpTestServer,
    free_port,
    with_tls_and_starttls,
)

SENDER = "fatture@example.it"
CLIENT_NAME = "invoice-mailer.test"  # spares smtplib a getfqdn() per connection


def make_eml(folder: Path, name: str = "m.eml", to: str = "mario@rossi.it", body: str = "") -> Path:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = f"Fattura {name}"
    message["Message-ID"] = f"<{name}@invoice-mailer.test>"
    message.set_content(body or "Gentile cliente,\nin allegato la fattura.\n")
    path = folder / name
    path.write_bytes(message.as_bytes())
    return path


def config_for(server: SmtpTestServer, certs: TestCerts, **changes) -> SmtpConfig:
    values = {
        "host": "localhost",
        "security": server.security,
        "port": server.port,
        "username": USER,
        "ca_file": certs.ca,
        "timeout": 5.0,
        "data_timeout": 5.0,
    } | changes
    return SmtpConfig(**values)


def send_one(transport: SmtpTransport, path: Path, to: tuple[str, ...] = ("mario@rossi.it",)):
    return transport.send(SENDER, to, path, path.stat().st_size)


def failure_of(transport: SmtpTransport, path: Path, to=("mario@rossi.it",)) -> SmtpFailure:
    with pytest.raises(SmtpFailure) as caught:
        send_one(transport, path, to)
    return caught.value


# -- the pure parts ----------------------------------------------------------------------------

_CERT_ERROR = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
_LOST = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.mark.parametrize(
    ("phase", "code", "error", "kind"),
    [
        ("connect", None, ConnectionRefusedError(111, "refused"), "transient"),
        ("connect", None, TimeoutError("timed out"), "transient"),
        ("connect", None, ConnectionResetError(104, "reset"), "transient"),
        ("connect", 421, None, "transient"),
        ("connect", 554, None, "transient"),  # a 5xx greeting is not about this document
        ("connect", None, _CERT_ERROR, "tls"),  # implicit TLS: the handshake is in connect
        ("connect", None, ssl.SSLError(1, "wrong version number"), "tls"),
        ("tls", None, None, "tls"),  # STARTTLS not offered
        ("tls", None, _CERT_ERROR, "tls"),
        ("tls", None, ssl.SSLEOFError(8, "EOF"), "transient"),  # handshake cut short
        ("tls", 454, None, "transient"),
        ("tls", 501, None, "tls"),
        ("ehlo", 421, None, "transient"),
        ("ehlo", None, _LOST, "transient"),
        ("auth", 535, None, "auth"),
        ("auth", 534, None, "auth"),
        ("auth", 454, None, "transient"),
        ("auth", None, smtplib.SMTPNotSupportedError("no AUTH"), "auth"),
        ("auth", None, _LOST, "transient"),
        ("mail", 530, None, "auth"),  # authentication required
        ("mail", 550, None, "permanent"),
        ("mail", 552, None, "permanent"),  # message too big for SIZE
        ("mail", 451, None, "transient"),
        ("rcpt", 550, None, "permanent"),
        ("rcpt", 553, None, "permanent"),
        ("rcpt", 450, None, "transient"),
        ("rcpt", 452, None, "transient"),
        ("rcpt", 552, None, "transient"),  # too many recipients (RFC 5321 §4.5.3.1.10)
        ("rcpt", 421, None, "transient"),
        ("data", 554, None, "permanent"),
        ("data", None, _LOST, "transient"),  # lost while streaming: the server has no "."
        ("end_of_data", 552, None, "permanent"),
        ("end_of_data", 451, None, "transient"),
        ("end_of_data", None, _LOST, "ambiguous"),
        ("end_of_data", None, TimeoutError("timed out"), "ambiguous"),
    ],
)
def test_classify_follows_the_failure_table(phase, code, error, kind):
    assert classify(phase, code, error) == kind


def test_dot_stuffing_is_the_same_whatever_the_chunk_boundaries():
    data = b".a\r\n..b\r\n.\r\nx.y\r\n\r\n.\r\n.z"
    whole = dot_stuff(data, b"\r\n")
    assert whole == b"..a\r\n...b\r\n..\r\nx.y\r\n\r\n..\r\n..z"
    for cut in range(len(data) + 1):
        first = dot_stuff(data[:cut], b"\r\n")
        tail = (b"\r\n" + data[:cut])[-2:]
        assert first + dot_stuff(data[cut:], tail) == whole, cut


# -- successful sessions -----------------------------------------------------------------------


def test_implicit_tls_with_auth_delivers_the_message(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    path = make_eml(tmp_path)
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        result = send_one(transport, path)
    assert result == SendResult(("mario@rossi.it",), {}, result.reply)
    assert result.reply.startswith("250 ")
    (received,) = server.wait_for_messages(1)
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ("mario@rossi.it",))
    assert received.data == path.read_bytes()
    assert received.login == USER and received.tls
    assert server.commands == ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]


def test_starttls_upgrades_before_logging_in(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    path = make_eml(tmp_path)
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        send_one(transport, path)
    (received,) = server.wait_for_messages(1)
    assert received.login == USER and received.tls
    assert server.commands[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]


def test_plain_text_never_authenticates(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("none")
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        send_one(transport, make_eml(tmp_path))
    (received,) = server.wait_for_messages(1)
    assert received.login is None and not received.tls
    assert "AUTH" not in server.commands


def test_a_password_with_security_none_is_refused_before_connecting(start_smtp_server, smtp_certs):
    server = start_smtp_server("none")
    with pytest.raises(SmtpFailure) as caught:
        SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME)
    assert caught.value.kind == "tls"
    assert "clear text" in str(caught.value)
    assert server.connections == []


@with_tls_and_starttls
def test_check_describes_the_session_and_sends_nothing(smtp_server, smtp_certs):
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        description = transport.check()
    security = smtp_server.security
    assert description.startswith(f"localhost:{smtp_server.port} ({security}), TLSv1.")
    assert description.endswith(f"logged in as {USER} with a password")
    assert smtp_server.commands[-2:] == ["AUTH", "QUIT"]
    assert smtp_server.messages == []


# -- TLS refusals: nothing is sent, not even the password ------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("cert", ["self_signed", "wrong_host"])
def test_an_untrusted_certificate_stops_everything(
    start_smtp_server, smtp_certs, tmp_path, security, cert
):
    server = start_smtp_server(security, cert=getattr(smtp_certs, cert), users={USER: PASSWORD})
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase, failure.code) == ("tls", "tls", None)
    reason = "self-signed certificate" if cert == "self_signed" else "Hostname mismatch"
    assert f"TLS certificate not accepted: {reason}" in str(failure)
    assert "smtp.ca_file" in str(failure)  # what to do next
    assert set(server.commands) <= {"EHLO", "STARTTLS"}
    assert server.messages == []


def test_starttls_not_offered_is_a_tls_failure(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    server.offer_starttls(False)
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase) == ("tls", "tls")
    assert "does not offer STARTTLS" in str(failure)
    assert server.commands == ["EHLO"]


# -- server refusals ---------------------------------------------------------------------------


def test_421_greeting_is_transient_and_the_next_try_works(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    server.refuse_connections(1)
    path = make_eml(tmp_path)
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, path)
        assert (failure.kind, failure.phase, failure.code) == ("transient", "connect", 421)
        assert str(failure).startswith("421 4.3.2 Service not available (connecting to ")
        send_one(transport, path)
    server.wait_for_messages(1)


def test_connection_refused_is_transient(smtp_certs, tmp_path):
    config = SmtpConfig(host="127.0.0.1", security="tls", port=free_port(), timeout=2.0)
    with SmtpTransport(config, PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase, failure.code) == ("transient", "connect", None)


@with_tls_and_starttls
def test_one_refused_recipient_does_not_stop_the_others(smtp_server, smtp_certs, tmp_path):
    smtp_server.reject_recipient("nobody@rossi.it")
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as t:
        result = send_one(t, make_eml(tmp_path), ("nobody@rossi.it", "mario@rossi.it"))
    assert result.accepted == ("mario@rossi.it",)
    assert result.refused == {"nobody@rossi.it": (550, "5.1.1 user unknown")}
    assert result.deferred == {}
    (received,) = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == ("mario@rossi.it",)


def test_all_recipients_refused_is_permanent_and_the_session_goes_on(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    server.reject_recipient("nobody@rossi.it")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path), ("nobody@rossi.it",))
        assert (failure.kind, failure.phase, failure.code) == ("permanent", "rcpt", 550)
        assert str(failure) == "550 5.1.1 user unknown (RCPT TO nobody@rossi.it)"
        assert failure.refused == {"nobody@rossi.it": (550, "5.1.1 user unknown")}
        send_one(transport, make_eml(tmp_path, "next.eml"))
    server.wait_for_messages(1)
    assert len(server.connections) == 1
    assert server.commands.count("DATA") == 1


def test_too_many_recipients_sends_to_the_accepted_and_defers_the_rest(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    server.limit_recipients(1)
    to = ("mario@rossi.it", "studio@commercialista.it", "archivio@example.it")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        result = send_one(transport, make_eml(tmp_path), to)
    assert result.accepted == ("mario@rossi.it",)
    assert set(result.refused) == set(to[1:])
    assert {code for code, _ in result.refused.values()} == {552}
    assert result.deferred == result.refused  # to be sent later, not failed
    assert server.commands.count("RCPT") == 2  # it stopped asking after the first 552
    assert server.wait_for_messages(1)[0].rcpt_tos == ("mario@rossi.it",)


@with_tls_and_starttls
def test_wrong_password_is_an_auth_failure_and_never_shows_the_password(
    smtp_server, smtp_certs, tmp_path, caplog
):
    smtp_server.fail_auth()
    caplog.set_level(logging.DEBUG)
    transport = SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME)
    with transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase, failure.code) == ("auth", "auth", 535)
    assert "535" in str(failure) and "encrypt-password" in str(failure)
    for text in (str(failure), repr(failure), repr(transport), caplog.text):
        assert PASSWORD not in text
    assert "MAIL" not in smtp_server.commands


def test_no_password_for_a_server_that_requires_auth_is_an_auth_failure(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase, failure.code) == ("auth", "mail", 530)


def test_a_message_larger_than_size_fails_before_mail(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("tls", users={USER: PASSWORD}, data_size_limit=1000)
    path = make_eml(tmp_path, "small.eml")
    with SmtpTransport(config_for(server, smtp_certs), PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path, "big.eml", body="fattura\n" * 300))
        assert (failure.kind, failure.phase) == ("permanent", "mail")
        assert "accepts at most 1000" in str(failure)
        assert "MAIL" not in server.commands
        send_one(transport, path)  # a small one still goes, on the same connection
    assert len(server.wait_for_messages(1)) == len(server.connections) == 1


# -- the RFC 1047 window and slow servers ------------------------------------------------------


@with_tls_and_starttls
def test_connection_lost_after_the_final_dot_is_ambiguous(smtp_server, smtp_certs, tmp_path):
    smtp_server.drop_after_data()
    path = make_eml(tmp_path)
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as t:
        failure = failure_of(t, path)
        assert (failure.kind, failure.phase, failure.code) == ("ambiguous", "end_of_data", None)
        assert "may have been delivered" in str(failure)
        assert smtp_server.wait_for_messages(1)[0].data == path.read_bytes()
        send_one(t, path)  # the next attempt reconnects
    assert len(smtp_server.wait_for_messages(2)) == len(smtp_server.connections) == 2


def test_a_slow_reply_to_the_final_dot_waits_for_data_timeout(
    start_smtp_server, smtp_certs, tmp_path
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    server.delay_data_reply(1.0)
    config = config_for(server, smtp_certs, timeout=0.4, data_timeout=10.0)
    with SmtpTransport(config, PASSWORD, CLIENT_NAME) as transport:
        result = send_one(transport, make_eml(tmp_path))
    assert result.accepted == ("mario@rossi.it",)
    assert len(server.messages) == 1


def test_no_reply_within_data_timeout_is_ambiguous(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    server.delay_data_reply(1.0)
    config = config_for(server, smtp_certs, data_timeout=0.2)
    with SmtpTransport(config, PASSWORD, CLIENT_NAME) as transport:
        failure = failure_of(transport, make_eml(tmp_path))
    assert (failure.kind, failure.phase) == ("ambiguous", "end_of_data")


# -- one connection for many messages ----------------------------------------------------------


@with_tls_and_starttls
def test_consecutive_messages_share_one_connection(smtp_server, smtp_certs, tmp_path):
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as t:
        for n in range(3):
            send_one(t, make_eml(tmp_path, f"m{n}.eml"))
    assert len(smtp_server.wait_for_messages(3)) == 3
    assert len(smtp_server.connections) == 1
    assert smtp_server.commands.count("AUTH") == 1
    assert smtp_server.commands.count("QUIT") == 1


@with_tls_and_starttls
def test_a_connection_dropped_while_idle_is_reopened(smtp_server, smtp_certs, tmp_path):
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as t:
        send_one(t, make_eml(tmp_path, "first.eml"))
        smtp_server.drop_connections()
        send_one(t, make_eml(tmp_path, "second.eml"))
    assert [m.message["Subject"] for m in smtp_server.wait_for_messages(2)] == [
        "Fattura first.eml",
        "Fattura second.eml",
    ]
    assert len(smtp_server.connections) == 2


@with_tls_and_starttls
def test_back_to_back_messages_need_no_rset_round_trip(smtp_server, smtp_certs, tmp_path):
    """A session that just accepted a message is clean: a burst saves one round trip each."""
    with SmtpTransport(config_for(smtp_server, smtp_certs), PASSWORD, CLIENT_NAME) as t:
        for name in ("a.eml", "b.eml", "c.eml"):
            send_one(t, make_eml(tmp_path, name))
    smtp_server.wait_for_messages(3)
    (verbs,) = smtp_server.connections
    assert "RSET" not in verbs
    assert verbs.count("MAIL") == 3


# -- the body arrives intact -------------------------------------------------------------------


def test_lines_starting_with_a_dot_arrive_intact(start_smtp_server, smtp_certs, tmp_path):
    server = start_smtp_server("none")
    path = make_eml(tmp_path, body=".hidden\n..two dots\n.\nlast line\n")
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        send_one(transport, path)
    (received,) = server.wait_for_messages(1)
    assert received.data == path.read_bytes()
    assert received.message.get_content() == ".hidden\n..two dots\n.\nlast line\n"


@pytest.mark.parametrize("offset", [0, 1, 2])  # the boundary before "\r", "\n" or "."
def test_dots_at_chunk_boundaries_arrive_intact(start_smtp_server, smtp_certs, tmp_path, offset):
    server = start_smtp_server("none")
    head = b"From: fatture@example.it\r\nTo: mario@rossi.it\r\nSubject: dots\r\n\r\n"
    filler = b"".join(b"%076d\r\n" % n for n in range(2 * CHUNK_SIZE // 78))
    # Place a lone-dot line so that a chunk ends right before its "\r\n." (offset 0..2).
    cut = CHUNK_SIZE - len(head) - offset
    body = filler[:cut] + b"\r\n.\r\n..x\r\n" + filler[cut:] + b".\r\n"
    data = head + body
    assert data[CHUNK_SIZE - offset : CHUNK_SIZE - offset + 3] == b"\r\n."
    path = tmp_path / "dots.eml"
    path.write_bytes(data)
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        send_one(transport, path)
    assert server.wait_for_messages(1)[0].data == data


def test_an_unreadable_ca_file_is_a_tls_failure(smtp_certs, tmp_path):
    config = SmtpConfig(host="localhost", security="tls", ca_file=tmp_path / "missing.pem")
    with pytest.raises(SmtpFailure) as caught:
        SmtpTransport(config, PASSWORD, CLIENT_NAME)
    assert caught.value.kind == "tls"
    assert "cannot use smtp.ca_file" in str(caught.value)


# -- the test server itself: its record must be trustworthy for "no AUTH happened" -------------


def test_the_server_records_commands_it_refuses(start_smtp_server, tmp_path):
    server = start_smtp_server("starttls", users={USER: PASSWORD}, eml_dir=tmp_path)
    with smtplib.SMTP(server.host, server.port, CLIENT_NAME, timeout=5) as client:
        client.ehlo()
        assert client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 530  # before STARTTLS
        assert client.docmd("MAIL", "FROM:<a@b.it>")[0] == 530
    assert server.commands == ["EHLO", "AUTH", "MAIL", "QUIT"]
    assert server.messages == [] and list(tmp_path.iterdir()) == []


def test_the_server_writes_each_message_as_an_eml_file(start_smtp_server, smtp_certs, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    server = start_smtp_server("none", eml_dir=outbox)
    path = make_eml(tmp_path)
    with SmtpTransport(config_for(server, smtp_certs), None, CLIENT_NAME) as transport:
        send_one(transport, path)
    (received,) = server.wait_for_messages(1)
    assert received.eml_path == outbox / "0001.eml"
    assert received.eml_path.read_bytes() == path.read_bytes()
