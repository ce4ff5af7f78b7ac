"""The mailbox logs in as the sender does, against the private Dovecot: with the output of
smtp.password_command (unless receipts.imap.password is set), with XOAUTH2 and the stored
sign-in's tokens (checked by the local sign-in server) or a token printed by a command; a
refused token or a missing sign-in is a MailboxError that names no token; and a provider
preset fills the mailbox's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from invoice_mailer.config import authkeys, credentials, presets
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import Config
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.endpoints import (
    MICROSOFT_IMAP,
    MICROSOFT_SMTP,
    endpoints_for,
    receipts_read_mailbox,
)
from invoice_mailer.receipts.imapconnect import MailboxError
from invoice_mailer.receipts.mailbox import Mailbox
from invoice_mailer.receipts.stage import check_mailbox, imap_account
from tests.support.configs import base_config
from tests.support.dovecot import PASSWORD, USERNAME, DovecotServer, needs_dovecot, start_dovecot
from tests.support.helpers import wait_until
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in

pytestmark = needs_dovecot


def write(tmp_path: Path, dovecot: DovecotServer, smtp: dict, imap: dict | None = None) -> Path:
    """The sender is the Dovecot user; the mailbox is on 127.0.0.1 unless `imap` says more."""
    key_file = tmp_path / "secret.key"
    if not key_file.exists():
        credentials.generate_key(key_file)
    receipts = {"imap": {"host": "127.0.0.1", "port": dovecot.tls_port, "ca_file": str(dovecot.ca),
                         "timeout": "10s", **(imap or {})}}  # fmt: skip
    config = base_config(tmp_path, sender={"address": USERNAME}, receipts=receipts)
    config["smtp"] = {"host": "localhost", "security": "starttls", "key_file": str(key_file),
                      **smtp}  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def test_password_command_logs_in_unless_the_mailbox_has_its_own(tmp_path, dovecot):
    runs = tmp_path / "runs"
    command = script(tmp_path, "pass", f"echo run >> {runs}\necho '{PASSWORD}'\n")
    path = write(tmp_path, dovecot, {"password_command": [str(command)]})
    said = check_mailbox(load_config(path))
    assert said.startswith(f"127.0.0.1:{dovecot.tls_port}, logged in as {USERNAME} with the "
                           "password from smtp.password_command, folders INBOX")  # fmt: skip
    assert runs.read_text() == "run\n"  # asked at the login, not kept
    own = write(tmp_path, dovecot, {"password_command": [str(command)]}, {"password": PASSWORD})
    assert f"logged in as {USERNAME} with a password," in check_mailbox(load_config(own))
    assert runs.read_text() == "run\n"  # the mailbox's own password: the command never ran


def test_a_failing_password_command_is_a_mailbox_error(tmp_path, dovecot):
    command = script(tmp_path, "pass", "echo 'vault is sealed' >&2\nexit 3\n")
    path = write(tmp_path, dovecot, {"password_command": [str(command)]})
    with pytest.raises(MailboxError) as failed:
        check_mailbox(load_config(path))
    assert str(failed.value) == (
        f"127.0.0.1:{dovecot.tls_port}: no secret to log in with: smtp.password_command: "
        f"{command} failed with exit status 3: vault is sealed"
    )


def test_a_preset_fills_the_mailbox_server(tmp_path, dovecot, monkeypatch):
    """A preset of the tests' own (the real table stays as it is) naming this Dovecot."""
    table = dict(presets.presets())
    table["test-pec"] = presets.Preset(
        key="test-pec",
        name="Test PEC",
        pec=True,
        smtp={"host": "localhost", "port": 465, "security": "tls"},
        imap={"host": "127.0.0.1", "port": dovecot.tls_port, "security": "tls"},
        bcc_refused=True,
        sources=("tests",),
    )
    monkeypatch.setattr(presets, "presets", lambda: table)
    monkeypatch.setattr(authkeys, "presets", lambda: table)
    key_file = tmp_path / "secret.key"
    credentials.generate_key(key_file)
    config = base_config(tmp_path, sender={"address": USERNAME}, receipts={"enabled": True})
    config["smtp"] = {
        "provider": "test-pec",
        "password": credentials.encrypt_password(PASSWORD, key_file),
        "key_file": str(key_file),
        "ca_file": str(dovecot.ca),  # the mailbox trusts the sender's CA file by default
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_config(path)
    assert loaded.receipts.pec is True
    assert loaded.receipts.from_preset == (
        "receipts.imap.host", "receipts.imap.port", "receipts.imap.security", "receipts.pec",
    )  # fmt: skip
    said = check_mailbox(loaded)
    assert said.startswith(f"127.0.0.1:{dovecot.tls_port}, logged in as {USERNAME} with a password")


# -- XOAUTH2 ----------------------------------------------------------------------------------


@pytest.fixture
def oauth_dovecot(tmp_path) -> Iterator[tuple[OAuthTestServer, DovecotServer]]:
    with OAuthTestServer(lifetime=2.0, user=USERNAME) as oauth:
        server = start_dovecot(tmp_path / "imap", oauth_introspection_url=oauth.introspection_url)
        try:
            yield oauth, server
        finally:
            server.stop()


def xoauth2_config(tmp_path: Path, oauth: OAuthTestServer, dovecot: DovecotServer) -> Config:
    smtp = {
        "auth": "xoauth2",
        "oauth": {"provider": "custom", "client_id": oauth.client_id,
                  "device_url": oauth.device_url, "token_url": oauth.token_url,
                  "scope": "mail offline_access"},
    }  # fmt: skip
    config = load_config(write(tmp_path, dovecot, smtp))
    assert config.receipts.imap.password is None and receipts_read_mailbox(config)
    return config


def signed_in(config: Config, oauth: OAuthTestServer, user: str | None = None) -> str:
    """Sign in through the device flow and store it as `login` does; the access token."""
    endpoints = endpoints_for(config.smtp, with_imap=True)
    tokens = sign_in(oauth, endpoints, user)
    fernet = credentials.read_key(config.smtp.key_file)
    config.state_dir.mkdir(mode=0o700, exist_ok=True)
    with tokenfile.locked(config.state_dir):
        tokenfile.save(config.state_dir, fernet, tokens)
    return tokens.access_token


def test_xoauth2_with_the_stored_sign_in_and_its_renewals(tmp_path, oauth_dovecot):
    oauth, dovecot = oauth_dovecot
    config = xoauth2_config(tmp_path, oauth, dovecot)
    first = signed_in(config, oauth)
    said = check_mailbox(config)
    assert f"logged in as {USERNAME} with XOAUTH2 (access token from the stored sign-in)" in said
    assert first in oauth.introspected  # Dovecot asked the sign-in server about it
    account = imap_account(config)
    assert account is not None and first not in repr(account)
    wait_until(lambda: oauth.expired(first), timeout=5)
    with Mailbox(account) as box:  # an expired token: renewed before the login
        box.uidvalidity("INBOX")
    assert oauth.grants.count("refresh_token") == 1
    assert oauth.introspected[-1] != first


def test_a_token_for_another_mailbox_is_refused_without_showing_it(tmp_path, oauth_dovecot):
    oauth, dovecot = oauth_dovecot
    config = xoauth2_config(tmp_path, oauth, dovecot)
    token = signed_in(config, oauth, user="someone@else.it")
    account = imap_account(config)
    assert account is not None
    for attempt in (1, 2):
        with pytest.raises(MailboxError) as refused, Mailbox(account):
            pass
        text = str(refused.value)
        assert f"refused the XOAUTH2 login of {USERNAME}" in text
        assert "AUTHENTICATIONFAILED" in text and "run `invoice-mailer login`" in text
        assert not any(secret in text for secret in oauth.issued)
        # The refused token is forgotten: the next login asks for a new one.
        assert oauth.grants.count("refresh_token") == attempt - 1
    assert token in oauth.introspected


def test_nobody_signed_in_is_a_mailbox_error_saying_login(tmp_path, oauth_dovecot):
    oauth, dovecot = oauth_dovecot
    config = xoauth2_config(tmp_path, oauth, dovecot)
    config.state_dir.mkdir(mode=0o700)
    with pytest.raises(MailboxError) as refused:
        check_mailbox(config)
    assert str(refused.value) == (
        "no access token for the mailbox: nobody has signed in for XOAUTH2 yet: run "
        "`invoice-mailer login`"
    )
    assert oauth.introspected == []  # nothing was sent to the mailbox


def test_xoauth2_with_a_token_printed_by_password_command(tmp_path, oauth_dovecot):
    oauth, dovecot = oauth_dovecot
    config = xoauth2_config(tmp_path, oauth, dovecot)
    token_file = tmp_path / "access-token"
    token_file.write_text(signed_in(config, oauth) + "\n")
    command = script(tmp_path, "print-token", f"cat {token_file}\n")
    smtp = {"auth": "xoauth2", "password_command": [str(command)]}
    config = load_config(write(tmp_path, dovecot, smtp))
    said = check_mailbox(config)
    assert "with XOAUTH2 (access token from smtp.password_command)" in said
    assert token_file.read_text().strip() in oauth.introspected


def test_a_refusal_after_a_sign_in_without_imap_access_says_to_sign_in_again(
    tmp_path, oauth_dovecot
):
    """The config now asks for IMAP access (receipts turned on); the stored sign-in was
    granted only SMTP, and the mailbox refuses its token."""
    oauth, dovecot = oauth_dovecot
    wanted = f"{MICROSOFT_SMTP} {MICROSOFT_IMAP} offline_access"
    smtp = {
        "auth": "xoauth2",
        "oauth": {"provider": "custom", "client_id": oauth.client_id,
                  "device_url": oauth.device_url, "token_url": oauth.token_url,
                  "scope": wanted},
    }  # fmt: skip
    config = load_config(write(tmp_path, dovecot, smtp))
    before = endpoints_of(oauth, scope=f"{MICROSOFT_SMTP} offline_access")
    tokens = sign_in(oauth, before, user="someone@else.it")
    config.state_dir.mkdir(mode=0o700)
    with tokenfile.locked(config.state_dir):
        tokenfile.save(config.state_dir, credentials.read_key(config.smtp.key_file), tokens)
    with pytest.raises(MailboxError) as refused:
        check_mailbox(config)
    assert str(refused.value).endswith(
        f"(the stored sign-in was granted without {MICROSOFT_IMAP}, as before receipts were "
        "turned on: run `invoice-mailer login` again)"
    )
