"""The session against a server that misbehaves on purpose (tests/support/roguesmtp.py):
whatever comes back after the final "." that cannot be read is the unknown outcome, the
connection is never reused out of step, and a stopping service is never held by a silent or
trickling server."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.delivery.smtp.wire import Abandoned
from tests.delivery.smtp.test_smtp import CLIENT_NAME, SENDER, make_eml
from tests.support.helpers import wait_until
from tests.support.roguesmtp import RogueSmtpServer


def plain_config(server: RogueSmtpServer, **changes) -> SmtpConfig:
    values = {"host": server.host, "port": server.port, "security": "none", "timeout": 5.0,
              "data_timeout": 5.0} | changes  # fmt: skip
    return SmtpConfig(**values)


def attempt(transport: SmtpTransport, path: Path) -> SmtpFailure:
    with pytest.raises(SmtpFailure) as caught:
        transport.send(SENDER, ("mario@rossi.it",), path, path.stat().st_size)
    return caught.value


@pytest.mark.parametrize(
    ("after_dot", "data_timeout"),
    [
        ("long_line", 5.0),
        ("endless", 5.0),
        ("not_numeric", 5.0),
        ("extra_line", 5.0),
        ("silent", 0.5),
    ],
)
def test_an_unreadable_reply_to_the_final_dot_is_the_unknown_outcome_on_a_new_connection(
    start_rogue_server, tmp_path, after_dot, data_timeout
):
    server = start_rogue_server(after_dot)
    path = make_eml(tmp_path)
    config = plain_config(server, data_timeout=data_timeout)
    with SmtpTransport(config, None, CLIENT_NAME) as transport:
        first = attempt(transport, path)
        second = attempt(transport, path)  # the same transport: a fresh connection, in step
    for failure in (first, second):
        assert failure.kind == "ambiguous" and failure.phase == "end_of_data"
        assert failure.code is None  # never "permanent", never a 5xx the server did not say
        assert "may have been delivered" in str(failure)
    assert server.connections == 2
    assert len(server.messages) == 2


def test_an_extra_reply_line_never_shifts_the_replies_of_the_next_message(
    start_rogue_server, tmp_path
):
    server = start_rogue_server("extra_line", spare=("anna@bianchi.it",))
    path = make_eml(tmp_path)
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        attempt(transport, path)
        result = transport.send(SENDER, ("anna@bianchi.it",), path, path.stat().st_size)
    assert result.accepted == ("anna@bianchi.it",) and result.reply.startswith("250")
    assert [m.rcpt_tos for m in server.messages] == [("mario@rossi.it",), ("anna@bianchi.it",)]


def test_an_unreadable_reply_before_data_is_a_connection_problem_not_a_refusal(
    start_rogue_server, tmp_path
):
    server = start_rogue_server(mail_reply=b"250 " + b"x" * 9000 + b"\r\n")
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        failure = attempt(transport, make_eml(tmp_path))
    assert failure.kind == "transient" and failure.phase == "mail" and failure.code is None
    assert "x" * 100 not in str(failure)  # the server's words are not quoted
    assert server.messages == []


def test_a_trickling_reply_ends_at_the_data_timeout_for_the_whole_reply(
    start_rogue_server, tmp_path
):
    server = start_rogue_server("trickle")
    with SmtpTransport(plain_config(server, data_timeout=3.0), None, CLIENT_NAME) as transport:
        failure = attempt(transport, make_eml(tmp_path))
    assert failure.kind == "ambiguous"
    assert "no complete reply within 3 s" in str(failure)


def test_a_stopping_service_gives_up_a_trickling_reply(start_rogue_server, tmp_path):
    server = start_rogue_server("trickle")
    stop = threading.Event()
    config = plain_config(server, data_timeout=600.0)
    with SmtpTransport(config, None, CLIENT_NAME, stop=stop) as transport:
        server_trickles = threading.Thread(target=lambda: (server.trickling.wait(10), stop.set()))
        server_trickles.start()
        failure = attempt(transport, make_eml(tmp_path))
        server_trickles.join()
    assert failure.kind == "ambiguous" and isinstance(failure.__cause__, Abandoned)


def rcpt_lines(server: RogueSmtpServer) -> list[bytes]:
    return [line for line in server.lines if line.upper().startswith(b"RCPT")]


def test_idn_domains_go_in_ascii_and_a_utf8_name_is_refused_alone_without_smtputf8(
    start_rogue_server, tmp_path
):
    server = start_rogue_server("ok")  # no SMTPUTF8 offered
    path = make_eml(tmp_path)
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        result = transport.send(
            SENDER, ("mario@perché.it", "sposò@example.it"), path, path.stat().st_size
        )
    assert result.accepted == ("mario@perché.it",)  # in the ledger's spelling
    ((code, text),) = result.refused.values()
    assert code == 553 and "sposò@example.it has non-ASCII letters before the @" in text
    assert "does not offer SMTPUTF8" in text
    assert rcpt_lines(server) == [b"rcpt TO:<mario@xn--perch-fsa.it>\r\n"]
    (message,) = server.messages
    assert message.rcpt_tos == ("mario@xn--perch-fsa.it",)
    assert b"SMTPUTF8" not in message.mail_line


def test_a_utf8_name_goes_with_smtputf8_where_the_server_offers_it(start_rogue_server, tmp_path):
    server = start_rogue_server("ok", smtputf8=True)
    path = make_eml(tmp_path)
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        result = transport.send(SENDER, ("sposò@perché.it",), path, path.stat().st_size)
    assert result.accepted == ("sposò@perché.it",) and result.refused == {}
    assert rcpt_lines(server) == ["rcpt TO:<sposò@xn--perch-fsa.it>\r\n".encode()]
    assert b" SMTPUTF8" in server.messages[0].mail_line


def test_only_utf8_names_without_smtputf8_is_a_readable_permanent_failure(
    start_rogue_server, tmp_path
):
    server = start_rogue_server("ok")
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        failure = attempt_to(transport, make_eml(tmp_path), ("sposò@example.it",))
    assert failure.kind == "permanent" and failure.code == 553
    assert "does not offer SMTPUTF8" in str(failure)
    assert server.messages == [] and rcpt_lines(server) == []


def attempt_to(transport: SmtpTransport, path: Path, to: tuple[str, ...]) -> SmtpFailure:
    with pytest.raises(SmtpFailure) as caught:
        transport.send(SENDER, to, path, path.stat().st_size)
    return caught.value


@pytest.mark.parametrize("security", ["none", "tls"])
def test_a_stopping_service_gives_up_a_server_that_accepts_and_never_speaks(tmp_path, security):
    """Neither a greeting nor (implicit TLS) a handshake: the wait ends when the service stops."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, then says nothing
        port = silent.getsockname()[1]
        stop = threading.Event()
        config = SmtpConfig(host="127.0.0.1", port=port, security=security, timeout=600.0)
        transport = SmtpTransport(config, None, CLIENT_NAME, stop=stop)

        def stop_once_connected() -> None:
            connection, _ = silent.accept()
            stop.set()
            with connection:  # reads whatever comes (a ClientHello), says nothing, until
                while connection.recv(65536):  # the client gives up and closes
                    pass

        watcher = threading.Thread(target=stop_once_connected)
        watcher.start()
        failure = attempt(transport, make_eml(tmp_path))
        watcher.join()
    assert failure.phase == "connect" and isinstance(failure.__cause__, Abandoned)


def test_a_server_that_hangs_up_after_its_250_has_the_message_once(start_rogue_server, tmp_path):
    server = start_rogue_server("ok_then_close")
    path = make_eml(tmp_path)
    with SmtpTransport(plain_config(server), None, CLIENT_NAME) as transport:
        for _ in range(2):
            result = transport.send(SENDER, ("mario@rossi.it",), path, path.stat().st_size)
            assert result.reply.startswith("250 2.0.0 Ok")
            wait_until(lambda: server.closed == server.connections)
    assert len(server.messages) == 2 and server.connections == 2


def test_a_stopping_service_gives_up_a_server_that_stops_reading_the_message(
    start_rogue_server, tmp_path
):
    server = start_rogue_server(stall_data=True)
    path = make_eml(tmp_path, body="Gentile cliente,\n" * 1_000_000)  # 17 MB: past the buffers
    stop = threading.Event()
    config = plain_config(server, timeout=600.0)
    with SmtpTransport(config, None, CLIENT_NAME, stop=stop) as transport:
        stopper = threading.Thread(target=lambda: (server.stalled.wait(10), stop.set()))
        stopper.start()
        failure = attempt(transport, path)
        stopper.join()
    assert failure.phase == "data" and isinstance(failure.__cause__, Abandoned)
    assert server.messages == []
