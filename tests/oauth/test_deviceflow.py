"""RFC 8628 against the local sign-in server: the code to show, waiting for the person,
a declined or expired sign-in, a network blink while waiting, and what an answer must hold."""

from __future__ import annotations

import threading

import pytest

from invoice_mailer.oauth import deviceflow
from invoice_mailer.oauth.wire import OAuthError, OAuthUnreachable
from tests.support.helpers import wait_until
from tests.support.oauthserver import CLIENT_ID, endpoints_of


def test_the_code_to_show_and_the_tokens_after_approval(oauth_server):
    endpoints = endpoints_of(oauth_server)
    code = deviceflow.request_code(endpoints)
    assert code.verification_uri == oauth_server.url("activate")
    assert code.user_code in oauth_server.pending_user_codes()
    assert code.device_code not in repr(code)  # the secret half never shows
    tokens = _approved_while_waiting(oauth_server, endpoints, code)
    assert oauth_server.user_of(tokens.access_token) == oauth_server.user
    assert tokens.refresh_token in oauth_server.issued
    assert tokens.issuer == {"token_url": oauth_server.token_url, "client_id": CLIENT_ID}
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert "authorization_pending" in oauth_server.refusals  # it waited for the person


def _approved_while_waiting(server, endpoints, code):
    """wait_for_sign_in's tokens, the person approving once the client has polled."""
    approver = threading.Thread(target=_approve_when_polled, args=(server, code.user_code))
    approver.start()
    try:
        return deviceflow.wait_for_sign_in(endpoints, code)
    finally:
        approver.join()


def _approve_when_polled(server, user_code: str) -> None:
    wait_until(lambda: "authorization_pending" in server.refusals, timeout=10)
    server.approve(user_code)


def test_a_late_answer_does_not_make_the_first_token_outlive_the_servers(oauth_server):
    endpoints = endpoints_of(oauth_server)
    code = deviceflow.request_code(endpoints)
    oauth_server.answer_delay = 0.3  # each poll's answer, the one with the tokens too
    tokens = _approved_while_waiting(oauth_server, endpoints, code)
    assert tokens.expires_at <= oauth_server.expiry_of(tokens.access_token)


def test_a_declined_sign_in_says_so(oauth_server):
    endpoints = endpoints_of(oauth_server)
    code = deviceflow.request_code(endpoints)
    oauth_server.deny(code.user_code)
    with pytest.raises(OAuthError, match="the sign-in was declined; nothing was stored"):
        deviceflow.wait_for_sign_in(endpoints, code)


def test_an_expired_code_says_run_login_again(start_oauth_server):
    server = start_oauth_server(device_ttl=0.5)
    endpoints = endpoints_of(server)
    code = deviceflow.request_code(endpoints)
    with pytest.raises(OAuthError, match="code expired before anyone signed in; run login"):
        deviceflow.wait_for_sign_in(endpoints, code)


def test_a_network_blink_while_waiting_is_ridden_out(oauth_server):
    endpoints = endpoints_of(oauth_server)
    code = deviceflow.request_code(endpoints)
    oauth_server.fail_requests(1, "drop")
    oauth_server.fail_requests(1, "503")
    oauth_server.approve(code.user_code)
    tokens = deviceflow.wait_for_sign_in(endpoints, code)
    assert oauth_server.user_of(tokens.access_token) == oauth_server.user


def test_an_unknown_client_is_refused_with_the_servers_error(oauth_server):
    with pytest.raises(OAuthError, match=r"refused: invalid_client \(test server"):
        deviceflow.request_code(endpoints_of(oauth_server, client_id="someone-else"))


def test_nothing_listening_is_unreachable(oauth_server):
    endpoints = endpoints_of(oauth_server)
    oauth_server.stop()
    with pytest.raises(OAuthUnreachable, match=r"cannot reach 127\.0\.0\.1"):
        deviceflow.request_code(endpoints)


def test_a_token_answer_without_a_refresh_token_asks_for_offline_access():
    endpoints = endpoints_of_fake()
    with pytest.raises(OAuthError, match="must include offline_access"):
        deviceflow.token_set({"access_token": "a", "expires_in": 60}, endpoints, 0.0, None)
    kept = deviceflow.token_set({"access_token": "b"}, endpoints, 10.0, "old-refresh")
    assert kept.refresh_token == "old-refresh"  # a refresh that does not rotate keeps it
    assert kept.expires_at == 10.0 + 3600


def endpoints_of_fake():
    from invoice_mailer.oauth.endpoints import Endpoints

    return Endpoints("https://x.example/device", "https://x.example/token", "id", "mail")
