"""`invoice-mailer login`, `check` and `send-test` with auth: xoauth2, as an admin runs them:
what they print, what they refuse, and what a declined sign-in leaves behind (nothing)."""

from __future__ import annotations

import os

import pytest

from tests.oauth.test_login_e2e import login, xoauth2_config
from tests.support.cli import run_cli
from tests.support.oauthserver import run_login
from tests.support.smtpserver import USER


def test_check_then_login_then_send_test(tmp_path, start_smtp_server, smtp_certs, oauth_server):
    server = start_smtp_server("starttls", oauth=oauth_server.user_of)
    config = xoauth2_config(tmp_path, server, smtp_certs, oauth_server)

    before = run_cli("-c", str(config), "check")
    assert before.returncode == 0, before.stderr
    assert "smtp.auth: nobody has signed in yet: run `invoice-mailer login`" in before.stderr
    assert f"login: XOAUTH2 as {USER} (custom), not signed in yet" in before.stdout

    signed = login(config, oauth_server)
    assert "the service renews its access tokens by itself" in signed.stdout
    after = run_cli("-c", str(config), "check")
    assert "signed in; access token valid until" in after.stdout
    assert "nobody has signed in" not in after.stderr

    sent = run_cli("-c", str(config), "send-test", "me@example.it")
    assert sent.returncode == 0, sent.stderr
    assert f"login: logged in as {USER} with XOAUTH2 (access token from the stored sign-in" in (
        sent.stdout
    )
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ("me@example.it",) and received.login == USER
    for secret in oauth_server.issued:
        assert secret not in signed.stdout + after.stdout + sent.stdout + sent.stderr


def test_a_declined_sign_in_stores_nothing(tmp_path, start_smtp_server, smtp_certs, oauth_server):
    server = start_smtp_server("starttls", oauth=oauth_server.user_of)
    config = xoauth2_config(tmp_path, server, smtp_certs, oauth_server)
    declined = run_login(config, oauth_server, approve=False)
    assert declined.returncode == 1
    assert declined.stderr == "invoice-mailer: the sign-in was declined; nothing was stored\n"
    assert (
        f"To sign in, open {oauth_server.url('activate')}\nand enter the code " in declined.stdout
    )
    assert not (tmp_path / "state" / "oauth.token").exists()


def test_login_is_only_for_xoauth2(tmp_path, smtp_server):
    from tests.support.service_harness import service_config

    config = service_config(tmp_path, smtp_server)
    refused = run_cli("-c", str(config), "login")
    assert refused.returncode == 1
    assert "smtp.auth is password: `login` is for auth: xoauth2" in refused.stderr


def test_an_unreachable_sign_in_server_is_one_sentence(
    tmp_path, start_smtp_server, smtp_certs, oauth_server
):
    server = start_smtp_server("starttls", oauth=oauth_server.user_of)
    config = xoauth2_config(tmp_path, server, smtp_certs, oauth_server)
    oauth_server.stop()
    refused = run_cli("-c", str(config), "login")
    assert refused.returncode == 1
    assert refused.stderr.startswith("invoice-mailer: cannot reach 127.0.0.1:")
    assert "Traceback" not in refused.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a file to another user")
def test_login_as_root_hands_the_file_to_the_state_folders_owner(
    tmp_path, start_smtp_server, smtp_certs, oauth_server
):
    server = start_smtp_server("starttls", oauth=oauth_server.user_of)
    config = xoauth2_config(tmp_path, server, smtp_certs, oauth_server)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # the service's user (here: nobody)
    login(config, oauth_server)
    token = state / "oauth.token"
    assert (token.stat().st_uid, token.stat().st_gid) == (65534, 65534)
    assert (state / "oauth.token.lock").stat().st_uid == 65534
