"""SASL XOAUTH2: the string itself, and the IMAP login the receipts stage uses, against the
private Dovecot checking each token with the local sign-in server (RFC 7662 introspection)."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator

import pytest

from invoice_mailer.oauth import xoauth2
from invoice_mailer.oauth.xoauth2 import ImapLoginRefused, imap_login
from tests.support.dovecot import USERNAME, DovecotServer, needs_dovecot, start_dovecot
from tests.support.helpers import wait_until
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in


def test_the_initial_response_is_the_documented_string():
    assert xoauth2.initial_response("a@b.it", "tok") == "user=a@b.it\x01auth=Bearer tok\x01\x01"
    with pytest.raises(ValueError, match="control characters"):
        xoauth2.initial_response("a@b.it\r\nMAIL FROM:<x>", "tok")
    with pytest.raises(ValueError, match="control characters"):
        xoauth2.initial_response("a@b.it", "tok\x01auth=Bearer other")


def test_the_responder_answers_a_second_challenge_empty():
    answer = xoauth2.responder("a@b.it", "tok")
    assert answer(None) == "user=a@b.it\x01auth=Bearer tok\x01\x01"
    assert answer(b'{"status":"401"}') == ""  # then the server says why it refused


@pytest.fixture
def signed_dovecot(tmp_path) -> Iterator[tuple[OAuthTestServer, DovecotServer]]:
    with OAuthTestServer(lifetime=2.0, user=USERNAME) as oauth:
        server = start_dovecot(tmp_path, oauth_introspection_url=oauth.introspection_url)
        try:
            yield oauth, server
        finally:
            server.stop()


def connect(server: DovecotServer) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=server.ca)
    return imaplib.IMAP4_SSL("127.0.0.1", server.tls_port, ssl_context=context, timeout=10)


@needs_dovecot
def test_dovecot_takes_a_valid_token_and_refuses_it_once_expired(signed_dovecot):
    oauth, server = signed_dovecot
    token = sign_in(oauth, endpoints_of(oauth)).access_token
    imap = connect(server)
    try:
        imap_login(imap, USERNAME, token)
        assert imap.state == "AUTH"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
    finally:
        imap.logout()
    assert token in oauth.introspected  # Dovecot asked the sign-in server, not a password file
    wait_until(lambda: oauth.expired(token), timeout=5)
    imap = connect(server)
    try:
        with pytest.raises(ImapLoginRefused, match="refused the XOAUTH2 login") as refused:
            imap_login(imap, USERNAME, token)
        assert token not in str(refused.value)
    finally:
        imap.logout()


@needs_dovecot
def test_a_token_for_another_mailbox_is_refused(signed_dovecot):
    oauth, server = signed_dovecot
    token = sign_in(oauth, endpoints_of(oauth), user="someone@else.it").access_token
    imap = connect(server)
    try:
        with pytest.raises(ImapLoginRefused, match="AUTHENTICATIONFAILED"):
            imap_login(imap, USERNAME, token)
    finally:
        imap.logout()


@needs_dovecot
def test_no_token_without_tls(signed_dovecot):
    _oauth, server = signed_dovecot
    imap = imaplib.IMAP4("127.0.0.1", server.starttls_port, timeout=10)
    try:
        with pytest.raises(ImapLoginRefused, match="TLS is not up; refusing to send"):
            imap_login(imap, USERNAME, "some-token")
    finally:
        imap.logout()
