"""How the SMTP session logs in (delivery/smtp/logins.py), against aiosmtpd servers that take
AUTH XOAUTH2 (checked with the local sign-in server) or a password: the stored sign-in, a
token or a password printed by smtp.password_command, and every way those fail."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from invoice_mailer.config import credentials
from invoice_mailer.delivery.smtp.logins import XOAuth2Login, make_login
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.tokens import AccessTokens
from tests.delivery.smtp.test_smtp import CLIENT_NAME, config_for, make_eml, send_one
from tests.support.configs import base_config
from tests.support.helpers import wait_until
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in
from tests.support.smtpserver import PASSWORD, USER


@pytest.fixture
def oauth(request) -> OAuthTestServer:
    lifetime = getattr(request, "param", 60.0)
    with OAuthTestServer(lifetime=lifetime, user=USER) as server:
        yield server


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    credentials.generate_key(path)
    return path


def signed_in_login(oauth: OAuthTestServer, tmp_path: Path, key_file: Path) -> XOAuth2Login:
    state_dir = tmp_path / "state"
    state_dir.mkdir(exist_ok=True)
    endpoints = endpoints_of(oauth)
    tokenfile.save(state_dir, credentials.read_key(key_file), sign_in(oauth, endpoints))
    return XOAuth2Login(AccessTokens(endpoints, state_dir, key_file, wait=lambda _s: False))


def script(tmp_path: Path, name: str, body: str) -> Path:
    """A real executable the config's password_command can name."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_xoauth2_sends_with_the_stored_sign_in(
    tmp_path, start_smtp_server, smtp_certs, oauth, key_file
):
    server = start_smtp_server("starttls", oauth=oauth.user_of)
    login = signed_in_login(oauth, tmp_path, key_file)
    with SmtpTransport(config_for(server, smtp_certs), login, CLIENT_NAME) as transport:
        assert (
            "with XOAUTH2 (access token from the stored sign-in, valid until" in transport.check()
        )
        send_one(transport, make_eml(tmp_path))
    (received,) = server.wait_for_messages(1)
    assert received.login == USER and received.tls
    assert all(accepted for _user, _token, accepted in server.xoauth2_logins)
    assert "AUTH" in server.connections[-1] and "STARTTLS" in server.connections[-1]


# Tokens of 3 s: long enough that a loaded machine still sends the first message with the
# first token (1.5 s failed once with a whole test run beside it), short enough to wait out.
@pytest.mark.parametrize("oauth", [3.0], indirect=True)
def test_a_session_ends_with_its_token_and_the_next_logs_in_afresh(
    tmp_path, start_smtp_server, smtp_certs, oauth, key_file
):
    server = start_smtp_server("tls", oauth=oauth.user_of)
    login = signed_in_login(oauth, tmp_path, key_file)
    message = make_eml(tmp_path)
    with SmtpTransport(config_for(server, smtp_certs), login, CLIENT_NAME) as transport:
        send_one(transport, message)
        first = server.xoauth2_logins[-1][1]
        wait_until(lambda: oauth.expired(first), timeout=10)
        send_one(transport, message)
    logins = server.xoauth2_logins
    assert len(logins) == 2 and logins[1][1] != first and logins[1][2]
    assert len(server.connections) == 2  # the expired session was not reused
    assert oauth.grants.count("refresh_token") == 1


def test_a_refused_token_is_an_auth_failure_and_is_renewed_next_time(
    tmp_path, start_smtp_server, smtp_certs, oauth, key_file
):
    refused: list[str] = []  # the server turns down the first token it sees (a revoked session)

    def check(token: str) -> str | None:
        if not refused:
            refused.append(token)
            return None
        return oauth.user_of(token)

    server = start_smtp_server("tls", oauth=check)
    login = signed_in_login(oauth, tmp_path, key_file)
    with SmtpTransport(config_for(server, smtp_certs), login, CLIENT_NAME) as transport:
        with pytest.raises(SmtpFailure) as failed:
            send_one(transport, make_eml(tmp_path))
        send_one(transport, make_eml(tmp_path))  # the refused token is not offered again
    assert failed.value.kind == "auth" and failed.value.code == 535, str(failed.value)
    assert "the access token was refused" in str(failed.value)
    assert refused[0] not in str(failed.value)
    assert [accepted for _user, _token, accepted in server.xoauth2_logins] == [False, True]
    assert server.xoauth2_logins[1][1] != refused[0]
    assert oauth.grants.count("refresh_token") == 1
    assert len(server.messages) == 1


def test_a_server_without_xoauth2_is_a_clear_auth_failure(
    tmp_path, start_smtp_server, smtp_certs, oauth, key_file
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    login = signed_in_login(oauth, tmp_path, key_file)
    transport = SmtpTransport(config_for(server, smtp_certs), login, CLIENT_NAME)
    with transport, pytest.raises(SmtpFailure, match=r"does not offer AUTH XOAUTH2 \(it offers"):
        send_one(transport, make_eml(tmp_path))
    assert server.messages == []


def test_a_revoked_sign_in_is_an_auth_pause_and_an_unreachable_one_a_deferral(
    tmp_path, start_smtp_server, smtp_certs, key_file
):
    with OAuthTestServer(lifetime=1.0, user=USER) as oauth:
        server = start_smtp_server("tls", oauth=oauth.user_of)
        login = signed_in_login(oauth, tmp_path, key_file)
        first = oauth.issued[-2]  # the access token of the sign-in
        wait_until(lambda: oauth.expired(first), timeout=5)
        config = config_for(server, smtp_certs)
        oauth.fail_requests(3)
        with SmtpTransport(config, login, CLIENT_NAME) as transport:
            with pytest.raises(SmtpFailure) as unreachable:
                send_one(transport, make_eml(tmp_path))
            assert (unreachable.value.kind, unreachable.value.phase) == ("transient", "token")
            assert "cannot refresh the access token" in str(unreachable.value)
            oauth.revoke()
            with pytest.raises(SmtpFailure) as revoked:
                send_one(transport, make_eml(tmp_path))
    assert (revoked.value.kind, revoked.value.phase) == ("auth", "token")
    assert "run `invoice-mailer login`" in str(revoked.value)
    assert server.messages == []


def test_password_command_gives_the_password_at_each_login(tmp_path, start_smtp_server, smtp_certs):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    command = script(tmp_path, "pw", f"print({PASSWORD!r}); print('second line ignored')")
    config = config_with(tmp_path, server, smtp_certs, password_command=[str(command)])
    transport = SmtpTransport(config.smtp, make_login(config), CLIENT_NAME)
    with transport:
        assert transport.check().endswith("with the password from smtp.password_command")
        send_one(transport, make_eml(tmp_path))
    assert server.wait_for_messages(1)[0].login == USER


def test_a_failing_password_command_pauses_with_its_own_words(
    tmp_path, start_smtp_server, smtp_certs
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    command = script(
        tmp_path, "pw", "print('locked: run unlock first', file=sys.stderr); sys.exit(3)"
    )
    config = config_with(tmp_path, server, smtp_certs, password_command=[str(command)])
    transport = SmtpTransport(config.smtp, make_login(config), CLIENT_NAME)
    with transport, pytest.raises(SmtpFailure) as failed:
        send_one(transport, make_eml(tmp_path))
    assert failed.value.kind == "auth"
    assert str(failed.value).startswith(
        f"no password: smtp.password_command: {command} failed with exit status 3: "
        "locked: run unlock first"
    )


def test_password_command_prints_the_access_token(tmp_path, start_smtp_server, smtp_certs, oauth):
    server = start_smtp_server("tls", oauth=oauth.user_of)
    token = sign_in(oauth, endpoints_of(oauth)).access_token
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    command = script(tmp_path, "tok", f"print(open({str(token_file)!r}).read().strip())")
    config = config_with(
        tmp_path, server, smtp_certs, auth="xoauth2", password_command=[str(command)]
    )
    with SmtpTransport(config.smtp, make_login(config), CLIENT_NAME) as transport:
        send_one(transport, make_eml(tmp_path))
        assert "access token from smtp.password_command, expiry not known" in (
            transport.login_description()
        )
    assert server.xoauth2_logins == [(USER, token, True)]


def config_with(tmp_path, server, certs, **smtp):
    """A whole Config (make_login takes one) sending to `server`."""
    from invoice_mailer.config.load import load_config
    from tests.support.configs import write_config

    values = base_config(tmp_path)["smtp"] | {"host": "localhost", "port": server.port}
    values |= {"security": server.security, "username": USER, "ca_file": str(certs.ca)}
    return load_config(write_config(tmp_path, smtp=values | smtp))
