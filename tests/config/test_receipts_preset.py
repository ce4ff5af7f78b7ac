"""The provider preset and the receipts' mailbox: a preset alone leaves receipts off;
`receipts.enabled: true` reads the preset's IMAP server, a PEC preset sets `receipts.pec`
(both overridable); `check` says which values came from the preset; the mailbox logs in as the
sender does (password_command, XOAUTH2 with a scope covering IMAP) unless it has a password of
its own; every mistake with its line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from invoice_mailer.config import credentials
from invoice_mailer.config.load import load_config, read_config
from invoice_mailer.errors import ConfigError
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.endpoints import (
    MICROSOFT_IMAP,
    MICROSOFT_SMTP,
    endpoints_for,
    receipts_read_mailbox,
)
from invoice_mailer.oauth.tokenfile import TokenSet
from tests.support.cli import run_cli
from tests.support.configs import base_config

ARUBA_IMAP = "imaps.pec.aruba.it"
CLIENT_ID = "00000000-1111-2222-3333-444444444444"
PRINTS_A_PASSWORD = "#!/bin/sh\necho 'Pa55-w0rd!'\n"


def write(tmp_path: Path, smtp: dict, **sections) -> Path:
    """A config with its own key file and `smtp` as given (the preset fills the rest)."""
    key_file = tmp_path / "secret.key"
    if not key_file.exists():
        credentials.generate_key(key_file)
    config = base_config(tmp_path, **sections)
    config["smtp"] = {"key_file": str(key_file), **smtp}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def aruba(tmp_path: Path, **sections) -> Path:
    password = credentials.encrypt_password("Pa55-w0rd!", _key(tmp_path))
    return write(tmp_path, {"provider": "aruba-pec", "password": password}, **sections)


def microsoft(tmp_path: Path, oauth: dict | None = None, **sections) -> Path:
    smtp = {"provider": "microsoft365", "oauth": {"client_id": CLIENT_ID, **(oauth or {})}}
    return write(tmp_path, smtp, **sections)


def _key(tmp_path: Path) -> Path:
    key_file = tmp_path / "secret.key"
    if not key_file.exists():
        credentials.generate_key(key_file)
    return key_file


def test_a_preset_alone_leaves_receipts_off_and_check_says_how_to_turn_them_on(tmp_path):
    path = aruba(tmp_path)
    receipts = load_config(path).receipts
    assert receipts.enabled is False and receipts.imap.host is None
    assert receipts.pec is False and receipts.from_preset == ()
    checked = run_cli("-c", str(path), "check")
    assert checked.returncode == 0, checked.stderr
    assert f"receipts (IMAP): {ARUBA_IMAP}:993 (tls), off; receipts.enabled: true reads it" in (
        checked.stdout
    )
    assert "; receipts from" not in checked.stdout


def test_enabled_reads_the_presets_mailbox_as_a_pec_box_and_check_says_so(tmp_path):
    path = aruba(tmp_path, receipts={"enabled": True})
    config = load_config(path)
    receipts, imap = config.receipts, config.receipts.imap
    assert receipts.enabled is True and receipts.pec is True
    assert (imap.host, imap.port, imap.security) == (ARUBA_IMAP, 993, "tls")
    # The sender's login: the address as user name, the same encrypted password.
    assert (imap.username, imap.password) == ("fatture@example.it", config.smtp.password)
    assert receipts.from_preset == (
        "receipts.imap.host", "receipts.imap.port", "receipts.imap.security", "receipts.pec",
    )  # fmt: skip
    assert receipts.waits_for_acceptance
    out = run_cli("-c", str(path), "check").stdout
    assert f"; receipts from {ARUBA_IMAP}:993 (tls)" in out
    assert f"  receipts (IMAP): {ARUBA_IMAP}:993 (tls), on\n" in out
    assert (
        f"    from the preset: receipts.imap.host {ARUBA_IMAP}, receipts.imap.port 993, "
        "receipts.imap.security tls, receipts.pec true\n"
    ) in out
    assert "set in the config instead: receipts" not in out


def test_the_config_overrides_any_of_them_and_check_says_which(tmp_path):
    imap = {"host": "127.0.0.1", "port": 1993}
    path = aruba(tmp_path, receipts={"imap": imap, "pec": False})  # on: a host of its own
    receipts = load_config(path).receipts
    assert receipts.enabled is True and receipts.pec is False
    assert (receipts.imap.host, receipts.imap.port, receipts.imap.security) == (
        "127.0.0.1", 1993, "tls",
    )  # fmt: skip
    assert receipts.from_preset == ("receipts.imap.security",)
    out = run_cli("-c", str(path), "check").stdout
    assert "    from the preset: receipts.imap.security tls\n" in out
    assert (
        "    set in the config instead: receipts.imap.host 127.0.0.1, receipts.imap.port 1993, "
        "receipts.pec false"
    ) in out


def test_an_own_security_gets_its_own_default_port(tmp_path):
    path = aruba(tmp_path, receipts={"enabled": True, "imap": {"security": "starttls"}})
    imap = load_config(path).receipts.imap
    assert (imap.host, imap.security, imap.port) == (ARUBA_IMAP, "starttls", 143)


def test_an_ordinary_provider_is_no_pec_box(tmp_path):
    path = write(
        tmp_path, {"provider": "gmail", "password": "app-password"}, receipts={"enabled": True}
    )
    receipts = load_config(path).receipts
    assert (receipts.imap.host, receipts.pec) == ("imap.gmail.com", False)
    assert "receipts.pec" not in receipts.from_preset


def test_enabled_false_turns_off_even_a_mailbox_of_its_own(tmp_path):
    path = aruba(tmp_path, receipts={"enabled": False, "imap": {"host": "imap.example.it"}})
    receipts = load_config(path).receipts
    assert receipts.enabled is False and receipts.pec is False
    assert not receipts.waits_for_acceptance


def test_without_a_preset_nothing_changes(tmp_path):
    path = write(tmp_path, {"host": "smtp.example.it", "password": "x"},
                 receipts={"imap": {"host": "imap.example.it"}})  # fmt: skip
    receipts = load_config(path).receipts
    assert (receipts.enabled, receipts.pec, receipts.imap.port) == (True, False, 993)


def test_on_without_a_mailbox_server_is_refused_with_its_line(tmp_path):
    path = write(
        tmp_path,
        {"host": "smtp.example.it", "password": "x"},
        receipts={"enabled": True, "poll": "30s"},
    )
    line = path.read_text().splitlines().index("  enabled: true") + 1
    checked = run_cli("-c", str(path), "check")
    assert checked.returncode == 78
    assert (
        f"line {line}, receipts.enabled: receipts are on but no mailbox server is known: set "
        "receipts.imap.host, or choose smtp.provider, whose preset names it"
    ) in checked.stderr
    path.write_text(path.read_text().replace("enabled: true", "enabled: 'yes'"))
    with pytest.raises(ConfigError, match=rf"line {line}, receipts.enabled: expected true or"):
        load_config(path)


def test_the_mailbox_logs_in_with_password_command_without_a_password_of_its_own(tmp_path):
    command = tmp_path / "print-password"
    command.write_text(PRINTS_A_PASSWORD)
    command.chmod(0o700)
    smtp = {"provider": "aruba-pec", "password_command": [str(command)]}
    path = write(tmp_path, smtp, receipts={"enabled": True})
    config, problems, _lines = read_config(path)
    assert problems == [] and config.receipts.imap.password is None
    without = write(tmp_path, {"provider": "aruba-pec"}, receipts={"enabled": True})
    with pytest.raises(ConfigError, match=r"receipts\.imap\.password: the mailbox needs a login"):
        load_config(without)


def test_with_xoauth2_the_default_scope_covers_imap_while_receipts_use_the_tokens(tmp_path):
    config = load_config(microsoft(tmp_path, receipts={"enabled": True}))
    assert receipts_read_mailbox(config)
    scope = endpoints_for(config.smtp, with_imap=receipts_read_mailbox(config)).scope or ""
    assert MICROSOFT_IMAP in scope.split() and MICROSOFT_SMTP in scope.split()
    assert config.receipts.imap.host == "outlook.office365.com"
    assert config.receipts.pec is False
    # A password of the mailbox's own: the sign-in needs no IMAP access.
    own = {"enabled": True, "imap": {"password": "imap-password"}}
    config = load_config(microsoft(tmp_path, receipts=own))
    assert not receipts_read_mailbox(config)
    assert MICROSOFT_IMAP not in (endpoints_for(config.smtp).scope or "")
    off = load_config(microsoft(tmp_path))
    assert not receipts_read_mailbox(off)


def test_a_scope_of_ones_own_without_imap_is_warned_with_its_line(tmp_path):
    scope = f"{MICROSOFT_SMTP} offline_access"
    path = microsoft(tmp_path, oauth={"scope": scope}, receipts={"enabled": True})
    line = next(
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if text.strip().startswith("scope:")
    )
    checked = run_cli("-c", str(path), "check")
    assert checked.returncode == 0, checked.stderr
    assert (
        f"line {line}, smtp.oauth.scope: receipts read the mailbox with the same sign-in, but the "
        f"scope lacks {MICROSOFT_IMAP}"
    ) in checked.stderr


def test_a_sign_in_made_before_receipts_were_on_is_warned(tmp_path):
    path = microsoft(tmp_path, receipts={"enabled": True})
    config = load_config(path)
    state = config.state_dir
    state.mkdir(mode=0o700)
    fernet = credentials.read_key(config.smtp.key_file)
    now = time.time()
    endpoints = endpoints_for(config.smtp)
    granted = TokenSet("access", "refresh", now + 3600, now, f"{MICROSOFT_SMTP} offline_access",
                       endpoints.issuer)  # fmt: skip
    with tokenfile.locked(state):
        tokenfile.save(state, fernet, granted)
    checked = run_cli("-c", str(path), "check")
    assert checked.returncode == 0, checked.stderr
    assert (
        f"smtp.auth: the stored sign-in was granted without {MICROSOFT_IMAP} (receipts were "
        "turned on after it)"
    ) in checked.stderr
    both = TokenSet("access", "refresh", now + 3600, now, f"{MICROSOFT_SMTP} {MICROSOFT_IMAP}",
                    endpoints.issuer)  # fmt: skip
    with tokenfile.locked(state):
        tokenfile.save(state, fernet, both)
    assert "granted without" not in run_cli("-c", str(path), "check").stderr


def test_the_examples_receipts_section_leaves_the_preset_its_say(tmp_path):
    """An admin who copies config.example.yaml, names a PEC provider and turns receipts on
    gets the preset's mailbox and pec: true (the example's nulls do not override them)."""
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    data = yaml.safe_load(example.read_text())
    data["watch"]["folder"] = str(tmp_path)
    data["smtp"] = {"provider": "aruba-pec", "password": "x"}
    data["receipts"]["enabled"] = True
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    receipts = load_config(path).receipts
    assert (receipts.imap.host, receipts.imap.port, receipts.pec) == (ARUBA_IMAP, 993, True)
