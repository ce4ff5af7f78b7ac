"""The encrypted password: key files, tokens, and a password that never shows itself."""

from __future__ import annotations

import logging
import os

import pytest

from invoice_mailer.config import credentials
from invoice_mailer.config.load import load_config
from invoice_mailer.errors import SecretError
from tests.support.configs import write_config


def _config_with_token(tmp_path, key_file, token):
    path = write_config(
        tmp_path, smtp={"security": "tls", "password": token, "key_file": str(key_file)}
    )
    return load_config(path)


def test_round_trip_and_key_mode(tmp_path):
    key = tmp_path / "secret.key"
    credentials.generate_key(key)
    assert os.stat(key).st_mode & 0o777 == 0o600
    token = credentials.encrypt_password("s3cret-pw", key)
    assert token.startswith("enc:") and "s3cret-pw" not in token
    config = _config_with_token(tmp_path, key, token)
    password = credentials.smtp_password(config.smtp)
    assert password.reveal() == "s3cret-pw"
    assert "s3cret-pw" not in repr(password) and "s3cret-pw" not in str(password)


def test_genkey_refuses_to_overwrite(tmp_path):
    key = tmp_path / "secret.key"
    credentials.generate_key(key)
    before = key.read_bytes()
    with pytest.raises(SecretError, match="already exists"):
        credentials.generate_key(key)
    assert key.read_bytes() == before


def test_wrong_key_names_the_key_file(tmp_path):
    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    credentials.generate_key(right)
    credentials.generate_key(wrong)
    token = credentials.encrypt_password("pw", right)
    config = _config_with_token(tmp_path, wrong, token)
    with pytest.raises(SecretError, match=f"{wrong}: wrong key or damaged token"):
        credentials.smtp_password(config.smtp)


def test_group_readable_key_is_refused_with_the_fix(tmp_path):
    key = tmp_path / "secret.key"
    credentials.generate_key(key)
    token = credentials.encrypt_password("pw", key)
    key.chmod(0o640)
    config = _config_with_token(tmp_path, key, token)
    with pytest.raises(SecretError, match=f"chmod 600 {key}"):
        credentials.smtp_password(config.smtp)


def test_missing_key_says_how_to_make_one(tmp_path):
    config = _config_with_token(tmp_path, tmp_path / "absent.key", "enc:abc")
    with pytest.raises(SecretError, match="invoice-mailer genkey"):
        credentials.smtp_password(config.smtp)


def test_systemd_credential_wins_over_key_file(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    credentials.generate_key(creds / "secret.key")
    token = credentials.encrypt_password("from-credential", creds / "secret.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = _config_with_token(tmp_path, tmp_path / "absent.key", token)
    assert credentials.smtp_password(config.smtp).reveal() == "from-credential"


def test_plain_password_accepted_with_warning_that_hides_it(tmp_path, caplog):
    config = _config_with_token(tmp_path, tmp_path / "k", "plain-pw-123")
    with caplog.at_level(logging.WARNING, logger="invoice_mailer"):
        logging.getLogger("invoice_mailer").propagate = True
        try:
            password = credentials.smtp_password(config.smtp)
        finally:
            logging.getLogger("invoice_mailer").propagate = False
    assert password.reveal() == "plain-pw-123"
    assert "clear text" in caplog.text
    assert "plain-pw-123" not in caplog.text
    assert "plain-pw-123" not in repr(config)


def test_credential_with_group_bits_is_accepted(tmp_path, monkeypatch):
    """systemd 254+ shows an ACL-granted credential as mode 0440; that is not a leak."""
    creds = tmp_path / "creds"
    creds.mkdir()
    key = creds / "secret.key"
    credentials.generate_key(key)
    token = credentials.encrypt_password("acl-pw", key)
    key.chmod(0o440)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = _config_with_token(tmp_path, tmp_path / "absent.key", token)
    assert credentials.smtp_password(config.smtp).reveal() == "acl-pw"
    key.chmod(0o444)
    with pytest.raises(SecretError, match="chmod 600"):
        credentials.smtp_password(config.smtp)
