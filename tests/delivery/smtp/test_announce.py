"""The next message's envelope behind the final dot (RFC 2920 §3.1): where the server offers
PIPELINING, MAIL, RCPT and DATA of the message that comes next go before the reply to the dot.
Its content still waits for its own 354; a message announced that does not follow is never
delivered (not even empty): the session is closed instead of ended with a dot or a QUIT.

The rogue server holds each reply to a dot until the client's next line has come (or 2 s), and
records that line: what a client sent without waiting for the reply."""

from __future__ import annotations

import pytest

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.delivery.smtp.transaction import Upcoming
from tests.delivery.smtp.test_smtp import CLIENT_NAME, SENDER, make_eml
from tests.support.helpers import wait_until

TO = ("mario@rossi.it",)


def _config(server) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1", security="none", port=server.port, timeout=5.0, data_timeout=5.0
    )


def _send(transport: SmtpTransport, path, then=None, to=TO):
    """Send `path`; `then` (a path) is named as the message that comes next."""
    upcoming = None if then is None else Upcoming(SENDER, TO, then, then.stat().st_size)
    return transport.send(SENDER, to, path, path.stat().st_size, lambda: upcoming)


def test_the_next_envelope_goes_before_the_reply_to_the_dot(start_rogue_server, tmp_path):
    server = start_rogue_server("ok", pipelining=True, hold_dot_reply=True)
    a, b, c = (make_eml(tmp_path, name) for name in ("a.eml", "b.eml", "c.eml"))
    with SmtpTransport(_config(server), None, CLIENT_NAME) as transport:
        results = [_send(transport, a, then=b), _send(transport, b, then=c), _send(transport, c)]
    assert [r.accepted for r in results] == [TO, TO, TO]
    assert [m.message["Subject"] for m in server.messages] == [
        "Fattura a.eml",
        "Fattura b.eml",
        "Fattura c.eml",
    ]
    # After a's dot and b's dot the next MAIL FROM came unasked; after c's, the QUIT did not
    # (a closing transport waits for the reply to the last dot).
    early = server.after_dot_lines
    assert [line[:10] if line else None for line in early[:2]] == [b"MAIL FROM:"] * 2
    assert b"<" + SENDER.encode() + b">" in early[0]
    assert early[2] is None
    assert server.connections == 1


def test_an_announced_message_that_does_not_follow_is_never_delivered(start_rogue_server, tmp_path):
    """b is announced (its DATA got a 354) but c is sent instead (a `retry` moved b, the step
    ended): the session is closed in DATA, where nothing can be delivered, and c goes on a new
    one. Ending b's DATA with a dot would have delivered an empty message to its recipient."""
    server = start_rogue_server("ok", pipelining=True, hold_dot_reply=True)
    a, b, c = (make_eml(tmp_path, name) for name in ("a.eml", "b.eml", "c.eml"))
    with SmtpTransport(_config(server), None, CLIENT_NAME) as transport:
        _send(transport, a, then=b)
        _send(transport, c)
    assert [m.message["Subject"] for m in server.messages] == ["Fattura a.eml", "Fattura c.eml"]
    assert server.connections == 2
    wait_until(lambda: server.closed == server.connections)  # it has seen both end
    assert b"".join(server.cut_short) == b""  # b's DATA (if it began): not even a QUIT


def test_closing_with_an_announced_message_sends_no_quit_into_its_data(
    start_rogue_server, tmp_path
):
    server = start_rogue_server("ok", pipelining=True, hold_dot_reply=True)
    a, b = make_eml(tmp_path, "a.eml"), make_eml(tmp_path, "b.eml")
    transport = SmtpTransport(_config(server), None, CLIENT_NAME)
    _send(transport, a, then=b)
    transport.close()
    wait_until(lambda: server.closed == server.connections)  # it has seen the end
    assert [m.message["Subject"] for m in server.messages] == ["Fattura a.eml"]
    assert b"".join(server.cut_short) == b""  # a QUIT would have been b's content


def test_a_server_that_closes_after_each_message_gets_the_next_on_a_new_connection(
    start_rogue_server, tmp_path
):
    """A limit of one message per connection: the 250 for a still counts (a is not resent),
    the envelope announced behind it is lost with the connection, and b goes on a new one."""
    server = start_rogue_server("ok_then_close", pipelining=True)
    a, b = make_eml(tmp_path, "a.eml"), make_eml(tmp_path, "b.eml")
    with SmtpTransport(_config(server), None, CLIENT_NAME) as transport:
        first = _send(transport, a, then=b)
        second = _send(transport, b)
    assert (first.accepted, second.accepted) == (TO, TO)
    assert [m.message["Subject"] for m in server.messages] == ["Fattura a.eml", "Fattura b.eml"]
    assert server.connections == 2


def test_a_refused_message_closes_the_session_its_announced_successor_goes_anew(
    start_rogue_server, tmp_path
):
    """The reply to a's dot is not a 250 (here: no reply that can be read): a's failure is
    a's, and b, announced behind it, is sent whole on a new connection, once."""
    server = start_rogue_server("not_numeric", pipelining=True, spare=("spare@example.it",))
    a, b = make_eml(tmp_path, "a.eml"), make_eml(tmp_path, "b.eml")
    with SmtpTransport(_config(server), None, CLIENT_NAME) as transport:
        upcoming = Upcoming(SENDER, ("spare@example.it",), b, b.stat().st_size)
        with pytest.raises(SmtpFailure) as caught:
            transport.send(SENDER, TO, a, a.stat().st_size, lambda: upcoming)
        second = transport.send(SENDER, ("spare@example.it",), b, b.stat().st_size)
    assert caught.value.phase == "end_of_data"
    assert second.accepted == ("spare@example.it",)
    assert [m.message["Subject"] for m in server.messages] == ["Fattura a.eml", "Fattura b.eml"]
    assert server.connections == 2


def test_no_announcement_without_pipelining(start_rogue_server, tmp_path):
    server = start_rogue_server("ok", pipelining=False, hold_dot_reply=True)
    a, b = make_eml(tmp_path, "a.eml"), make_eml(tmp_path, "b.eml")
    with SmtpTransport(_config(server), None, CLIENT_NAME) as transport:
        _send(transport, a, then=b)
        _send(transport, b)
    assert server.after_dot_lines[0] is None  # the client waited for the reply
    assert len(server.messages) == 2 and server.connections == 1
