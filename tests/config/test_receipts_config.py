"""receipts: off while imap.host is null; the mailbox's login, password and CA default to
smtp's; never clear text; every mistake reported with its line, all at once (exit 78); the
example documents every key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from invoice_mailer.config import credentials
from invoice_mailer.config.load import load_config
from invoice_mailer.errors import ConfigError
from tests.support.cli import run_cli
from tests.support.configs import write_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_receipts_are_off_by_default_and_in_the_example(tmp_path):
    assert load_config(write_config(tmp_path)).receipts.enabled is False
    (tmp_path / "export2").mkdir()
    text = EXAMPLE.read_text().replace("/srv/fatture/export", str(tmp_path / "export2"))
    (tmp_path / "example.yaml").write_text(text)
    receipts = load_config(tmp_path / "example.yaml").receipts
    assert receipts.enabled is False
    assert receipts.imap.folders == ("INBOX",) and receipts.imap.port == 993
    assert (receipts.poll, receipts.accept_within, receipts.deliver_within) == (60, 1800, 86400)
    assert receipts.pec is False and receipts.lost_reply_wait == 600
    assert receipts.imap.max_message_size == 100_000_000


def test_the_mailbox_takes_the_smtp_login_password_and_ca_unless_set(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    smtp = {"security": "tls", "port": 465, "username": "utente", "password": "enc:TOKEN",
            "ca_file": str(ca)}  # fmt: skip
    imap = {"host": "imaps.pec.example.it", "security": "starttls"}
    config = load_config(write_config(tmp_path, smtp=smtp, receipts={"imap": imap}))
    got = config.receipts.imap
    assert (got.host, got.port, got.username, got.password, got.ca_file) == (
        "imaps.pec.example.it", 143, "utente", "enc:TOKEN", ca,
    )  # fmt: skip
    assert "TOKEN" not in repr(config)
    own = {**imap, "username": "altro", "password": "enc:OTHER", "port": 1143}
    got = load_config(write_config(tmp_path, smtp=smtp, receipts={"imap": own})).receipts.imap
    assert (got.username, got.password, got.port) == ("altro", "enc:OTHER", 1143)


def test_every_receipts_mistake_at_once_with_its_line(tmp_path):
    path = write_config(tmp_path)
    base = len(path.read_text().splitlines())  # the receipts: section starts on line base + 1
    path.write_text(
        path.read_text()
        + "receipts:\n"  # +1
        + "  imap:\n"  # +2
        + "    host: imap..example.it\n"  # +3
        + "    security: none\n"  # +4
        + "    folders: [INBOX, '']\n"  # +5
        + "    fodlers: [Ricevute]\n"  # +6
        + "  poll: soon\n"  # +7
        + "  pec: maybe\n"  # +8
        + "  accept_within: 0s\n"  # +9
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    for offset, fragment in (
        (3, "receipts.imap.host: expected a host name"),
        (4, "receipts.imap.security: the mailbox is never read in clear text"),
        (5, "receipts.imap.folders: expected a folder name"),
        (6, "receipts.imap.fodlers: unknown key (did you mean 'folders'?)"),
        (7, "receipts.poll: expected a duration"),
        (8, "receipts.pec: expected true or false"),
        (9, "receipts.accept_within: must be longer than 0s"),
    ):
        assert f"line {base + offset}, {fragment}" in text
    assert caught.value.exit_status == 78


def test_a_mailbox_without_a_password_or_on_the_other_port_is_refused(tmp_path):
    imap = {"host": "imap.example.it", "security": "tls", "port": 143}
    path = write_config(tmp_path, receipts={"imap": imap})
    done = run_cli("-c", str(path), "check")
    assert done.returncode == 78
    assert "receipts.imap.port: port 143 speaks STARTTLS, not implicit TLS" in done.stderr
    assert "receipts.imap.password: the mailbox needs a login" in done.stderr


def test_check_reports_a_mailbox_token_the_key_cannot_open(tmp_path):
    key = tmp_path / "secret.key"
    credentials.generate_key(key)
    token = credentials.encrypt_password("smtp-password", key)
    imap = {"host": "imap.example.it", "password": "enc:not-a-token"}
    smtp = {"security": "tls", "port": 465, "password": token, "key_file": str(key)}
    path = write_config(tmp_path, smtp=smtp, receipts={"imap": imap})
    done = run_cli("-c", str(path), "check")
    assert done.returncode == 78, done.stderr
    assert "receipts.imap.password: receipts.imap.password cannot be decrypted" in done.stderr
    settings = yaml.safe_load(path.read_text())
    settings["receipts"]["imap"]["password"] = credentials.encrypt_password("imap-pw", key)
    path.write_text(yaml.safe_dump(settings))
    config = load_config(path)
    assert credentials.imap_password(config).reveal() == "imap-pw"  # type: ignore[union-attr]
    assert run_cli("-c", str(path), "check").returncode == 0
