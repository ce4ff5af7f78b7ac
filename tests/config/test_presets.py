"""Provider presets (config/providers.yaml) and the keys of modern authentication: each preset
passes `check` and shows its notes, every preset value can be overridden and `check` says which
are in force, and what cannot work is refused with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from invoice_mailer.config import credentials
from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.load import load_config, read_config
from invoice_mailer.config.presets import presets
from invoice_mailer.errors import ConfigError
from tests.support.cli import run_cli
from tests.support.configs import base_config

PRESETS = sorted(presets())
EXTRA = {  # what each provider needs beside the preset to pass check
    "legalmail": {"username": "ABCD1234"},
    "microsoft365": {"oauth": {"client_id": "00000000-1111-2222-3333-444444444444"}},
}


def write(tmp_path: Path, smtp: dict, **sections) -> Path:
    config = base_config(tmp_path, **sections)
    config["smtp"] = smtp
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def preset_config(tmp_path: Path, key: str, **smtp) -> Path:
    key_file = tmp_path / "secret.key"
    if not key_file.exists():
        credentials.generate_key(key_file)
    values = {"provider": key, "key_file": str(key_file)}
    if key != "microsoft365":
        values["password"] = credentials.encrypt_password("Pa55-w0rd!", key_file)
    return write(tmp_path, values | EXTRA.get(key, {}) | smtp)


@pytest.mark.parametrize("key", PRESETS)
def test_each_preset_passes_check_and_shows_its_notes(tmp_path, key):
    preset = presets()[key]
    checked = run_cli("-c", str(preset_config(tmp_path, key)), "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = checked.stdout
    host, port = preset.smtp["host"], preset.smtp["port"]
    assert f"sending via {host}:{port} ({preset.smtp['security']})" in out
    assert f"provider {key} ({preset.name})" in out
    assert f"from the preset: smtp.host {host}, smtp.port {port}" in out
    for note in preset.notes:
        assert f"  note: {note}" in out
    assert f"receipts (IMAP): {preset.imap['host']}:993 (tls)" in out
    if preset.unconfirmed:
        assert "not confirmed by the provider's own pages: " + ", ".join(preset.unconfirmed) in out
    assert "Pa55-w0rd!" not in out + checked.stderr


def test_the_table_is_consistent():
    for key, preset in presets().items():
        ys.host(preset.smtp["host"])
        expected = {"tls": 465, "starttls": 587}[preset.smtp["security"]]
        assert preset.smtp["port"] == expected, key
        assert preset.sources, key
        assert preset.username in ("address", "user-id"), key
        assert preset.pec == preset.bcc_refused, key  # PEC servers refuse Bcc, others take it
        for dotted in preset.unconfirmed:
            section, field = dotted.split(".")
            assert field in getattr(preset, section), (key, dotted)


def test_any_preset_value_can_be_overridden_and_check_says_which(tmp_path):
    path = preset_config(
        tmp_path, "aruba-pec", port=587, security="starttls", rate={"per_hour": 50}
    )
    config = load_config(path)
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == (
        "smtps.pec.aruba.it", 587, "starttls",
    )  # fmt: skip
    assert config.smtp.from_preset == ("smtp.host",)
    out = run_cli("-c", str(path), "check").stdout
    assert "from the preset: smtp.host smtps.pec.aruba.it\n" in out
    assert "set in the config instead: smtp.port 587, smtp.security starttls" in out


def test_an_own_security_gets_its_own_default_port(tmp_path):
    config = load_config(preset_config(tmp_path, "microsoft365", security="tls"))
    assert (config.smtp.security, config.smtp.port) == ("tls", 465)  # not the preset's 587


def test_a_rate_limit_is_filled_key_by_key(tmp_path):
    config = load_config(preset_config(tmp_path, "microsoft365", rate={"per_minute": 10}))
    assert (config.smtp.rate.per_minute, config.smtp.rate.per_day) == (10, 10000)
    assert config.smtp.auth == "xoauth2" and config.smtp.oauth.provider == "microsoft"


def test_legalmail_needs_its_user_id_and_pec_refuses_bcc(tmp_path):
    key_file = tmp_path / "secret.key"
    credentials.generate_key(key_file)
    path = write(
        tmp_path,
        {"provider": "legalmail", "password": "x", "key_file": str(key_file)},
        copy_mode="bcc",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    text = str(refused.value)
    assert "smtp.username: Legalmail (InfoCert) logs in with the user id it gave you" in text
    assert "copy_mode: Legalmail (InfoCert) refuses messages with Bcc recipients" in text


def test_an_unknown_provider_suggests_the_closest(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown provider 'arubapec' \(did you mean 'aruba-pec'"
    ):
        load_config(write(tmp_path, {"provider": "arubapec", "password": "x"}))


def test_microsoft365_with_a_password_is_warned_of_december_2026(tmp_path):
    path = preset_config(tmp_path, "microsoft365", auth="password", password="x")
    config, problems, _lines = read_config(path)
    assert problems == []
    (warning,) = [w for w in config.warnings if w.key == "smtp.auth"]
    assert "turns password logins off by default at the end of December 2026" in warning.message


@pytest.mark.parametrize(
    ("smtp", "expected"),
    [
        (
            {"auth": "xoauth2", "oauth": {"provider": "google", "client_id": "x"}},
            "smtp.oauth.provider: Google's device sign-in does not grant access to Gmail",
        ),
        ({"auth": "xoauth2"}, "smtp.oauth.client_id: is required with auth: xoauth2"),
        (
            {"auth": "xoauth2", "security": "none", "oauth": {"client_id": "x"}},
            "smtp.security: an access token would travel in clear text",
        ),
        (
            {"auth": "xoauth2", "oauth": {"provider": "custom", "client_id": "x"}},
            "smtp.oauth.device_url: is required with oauth.provider: custom",
        ),
        (
            {"auth": "xoauth2", "oauth": {"token_url": "http://login.example.it/token"}},
            "smtp.oauth.token_url: expected an https:// URL (http:// only to this machine",
        ),
        (
            {"auth": "xoauth2", "password": "x", "oauth": {"client_id": "x"}},
            "smtp.password: auth: xoauth2 signs in with `invoice-mailer login`, not a password",
        ),
        (
            {"password_command": "pass show mail/fatture"},
            "smtp.password_command: write the command as a list of words, e.g. "
            "[pass, show, mail/fatture] (it runs without a shell)",
        ),
        (
            {"password_command": ["no-such-program-here", "x"]},
            "smtp.password_command: no-such-program-here is not found in PATH; write its full path",
        ),
        (
            {"password_command": ["/bin/true"], "password": "x"},
            "smtp.password_command: give either smtp.password or smtp.password_command, not both",
        ),
        (
            {"auth": "none", "password": "x"},
            "smtp.password: auth: none never logs in",
        ),
        (
            {"auth": "xoauth2", "oauth": {"client_id": "x", "tenant": "contoso com"}},
            "smtp.oauth.tenant: expected a directory (tenant) id or domain",
        ),
    ],
)
def test_what_cannot_work_is_refused_with_its_line(tmp_path, smtp, expected):
    values = {"host": "smtp.example.it", "security": "starttls"} | smtp
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, values))
    assert expected in str(refused.value)
    assert "line " in str(refused.value)


def test_a_local_custom_server_over_http_is_accepted(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "host": "smtp.example.it",
                "security": "starttls",
                "auth": "xoauth2",
                "oauth": {
                    "provider": "custom",
                    "client_id": "x",
                    "device_url": "http://127.0.0.1:8080/device",
                    "token_url": "https://login.example.it/token",
                },
            },
        )
    )
    assert config.smtp.oauth.device_url == "http://127.0.0.1:8080/device"
    assert config.smtp.oauth.token_url == "https://login.example.it/token"
