"""Access tokens from the stored sign-in (oauth/tokens.py, oauth/tokenfile.py) against the local
sign-in server: reused while fresh, refreshed before expiry with the rotation stored, quick
retries when the server blinks, LoginNeeded on invalid_grant, and the file itself."""

from __future__ import annotations

import os
import stat
import time

import pytest

from invoice_mailer.config import credentials
from invoice_mailer.errors import SecretError
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.tokens import AccessTokens, LoginNeeded
from invoice_mailer.oauth.wire import OAuthUnreachable
from tests.support.helpers import wait_until
from tests.support.oauthserver import endpoints_of, sign_in


def no_wait(_seconds: float) -> bool:
    return False  # a retry at once; False: the service is not stopping


def stored_sign_in(server, state_dir, key_file, **changes):
    endpoints = endpoints_of(server, **changes)
    tokens = sign_in(server, endpoints)
    tokenfile.save(state_dir, credentials.read_key(key_file), tokens)
    return endpoints, tokens


def test_the_file_is_private_and_holds_no_token_in_clear(oauth_server, state_dir, key_file):
    _endpoints, tokens = stored_sign_in(oauth_server, state_dir, key_file)
    path = state_dir / "oauth.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert tokens.refresh_token.encode() not in raw and tokens.access_token.encode() not in raw
    loaded = tokenfile.load(state_dir, credentials.read_key(key_file))
    assert loaded == tokens
    assert [p.name for p in state_dir.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_another_key_cannot_read_it(oauth_server, state_dir, key_file, tmp_path):
    stored_sign_in(oauth_server, state_dir, key_file)
    other = tmp_path / "other.key"
    credentials.generate_key(other)
    with pytest.raises(SecretError, match=r"cannot be decrypted with the key.*login"):
        tokenfile.load(state_dir, credentials.read_key(other))


def test_a_fresh_token_is_used_without_asking_the_server(oauth_server, state_dir, key_file):
    endpoints, tokens = stored_sign_in(oauth_server, state_dir, key_file)
    provider = AccessTokens(endpoints, state_dir, key_file)
    assert provider.token().token == tokens.access_token
    assert provider.token().token == tokens.access_token
    assert oauth_server.grants.count("refresh_token") == 0


def test_refreshed_before_expiry_rotation_stored(start_oauth_server, state_dir, key_file):
    server = start_oauth_server(lifetime=1.2)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    provider = AccessTokens(endpoints, state_dir, key_file, wait=no_wait)
    # Refreshed once less than a quarter of its life is left: before the server would refuse it.
    wait_until(lambda: not first.fresh(time.time()), timeout=5)
    renewed = provider.token()
    assert renewed.token != first.access_token
    assert server.user_of(renewed.token) == server.user
    assert server.grants.count("refresh_token") == 1
    stored = tokenfile.load(state_dir, credentials.read_key(key_file))
    assert stored.refresh_token != first.refresh_token  # rotated, and the new one kept
    assert stored.access_token == renewed.token


def test_a_slow_answer_does_not_make_a_token_outlive_the_servers(
    start_oauth_server, state_dir, key_file
):
    """The lifetime counts from the request: timed from a late answer, the service would keep
    a session the server already considers expired (and never log in afresh)."""
    server = start_oauth_server(lifetime=1.2)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    provider = AccessTokens(endpoints, state_dir, key_file, wait=no_wait)
    wait_until(lambda: not first.fresh(time.time()), timeout=5)
    server.answer_delay = 0.5
    renewed = provider.token()
    assert renewed.token != first.access_token
    assert renewed.expires_at is not None
    assert renewed.expires_at <= server.expiry_of(renewed.token)


def test_a_blinking_server_is_retried_at_once(start_oauth_server, state_dir, key_file):
    server = start_oauth_server(lifetime=1.0)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    wait_until(lambda: server.expired(first.access_token), timeout=5)
    server.fail_requests(1, "drop")
    server.fail_requests(1, "503")
    token = AccessTokens(endpoints, state_dir, key_file, wait=no_wait).token()
    assert server.user_of(token.token) == server.user


def test_unreachable_keeps_a_token_that_still_works(start_oauth_server, state_dir, key_file):
    server = start_oauth_server(lifetime=8.0)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    wait_until(lambda: not first.fresh(time.time()), timeout=10)  # due for renewal, not expired
    server.fail_requests(3)
    token = AccessTokens(endpoints, state_dir, key_file, wait=no_wait).token()
    assert token.token == first.access_token


def test_unreachable_with_an_expired_token_fails(start_oauth_server, state_dir, key_file):
    server = start_oauth_server(lifetime=1.0)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    wait_until(lambda: server.expired(first.access_token), timeout=5)
    server.fail_requests(3)
    with pytest.raises(OAuthUnreachable, match="answered HTTP 503") as failed:
        AccessTokens(endpoints, state_dir, key_file, wait=no_wait).token()
    assert first.refresh_token not in str(failed.value)


def test_a_revoked_sign_in_needs_a_new_login(start_oauth_server, state_dir, key_file):
    server = start_oauth_server(lifetime=1.0)
    endpoints, first = stored_sign_in(server, state_dir, key_file)
    server.revoke()
    wait_until(lambda: server.expired(first.access_token), timeout=5)
    with pytest.raises(LoginNeeded, match=r"invalid_grant.*run `invoice-mailer login`") as refused:
        AccessTokens(endpoints, state_dir, key_file, wait=no_wait).token()
    assert first.refresh_token not in str(refused.value)


def test_no_sign_in_yet_or_another_registration_needs_login(oauth_server, state_dir, key_file):
    endpoints = endpoints_of(oauth_server)
    with pytest.raises(LoginNeeded, match="nobody has signed in for XOAUTH2 yet"):
        AccessTokens(endpoints, state_dir, key_file).token()
    stored_sign_in(oauth_server, state_dir, key_file)
    other = endpoints_of(oauth_server, client_id="another-app")
    with pytest.raises(LoginNeeded, match="belongs to another app registration"):
        AccessTokens(other, state_dir, key_file).token()


def test_a_new_login_is_picked_up_by_a_running_provider(oauth_server, state_dir, key_file):
    endpoints, first = stored_sign_in(oauth_server, state_dir, key_file)
    provider = AccessTokens(endpoints, state_dir, key_file)
    assert provider.token().token == first.access_token
    _endpoints, second = stored_sign_in(oauth_server, state_dir, key_file)  # `login` again
    assert provider.token().token == second.access_token


def test_a_token_the_mail_server_refused_is_renewed(oauth_server, state_dir, key_file):
    endpoints, first = stored_sign_in(oauth_server, state_dir, key_file)
    provider = AccessTokens(endpoints, state_dir, key_file)
    provider.forget(first.access_token)
    assert provider.token().token != first.access_token
    assert oauth_server.grants.count("refresh_token") == 1


def test_the_lock_file_is_private(oauth_server, state_dir, key_file):
    stored_sign_in(oauth_server, state_dir, key_file)
    old = os.umask(0o022)
    try:
        with tokenfile.locked(state_dir):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((state_dir / "oauth.token.lock").stat().st_mode) == 0o600
