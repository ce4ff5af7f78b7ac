"""The config loader: the example loads, and every mistake is reported at once with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoice_mailer.config.load import config_path, load_config
from invoice_mailer.config.texts import ENGLISH
from invoice_mailer.errors import ConfigError
from tests.support.configs import write_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_example_config_loads_with_documented_values(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    text = EXAMPLE.read_text().replace("/srv/fatture/export", str(folder))
    path = tmp_path / "config.yaml"
    path.write_text(text)

    config = load_config(path)

    assert config.watch.folder == folder
    assert config.watch.settle == 2.0 and config.watch.rescan == 300.0
    assert config.smtp.port == 465 and config.smtp.security == "tls"
    assert config.smtp.max_message_size == 25_000_000
    assert config.retry.max_age == 5 * 86400
    assert config.signature.startswith("-- \n")  # RFC 3676, with its space
    assert config.copy_mode == "cc"
    assert config.all_to.address is None
    assert config.customers.send == ("pdf",)
    # Customers abroad: the example spells out the built-in English, and Italian stays the default.
    assert config.templates.for_language("en") == ENGLISH
    assert (config.customers.language, config.customers.foreign_language) == ("it", "en")
    assert config.customers.csv.columns.language == "Lingua"


def test_defaults_fill_in_port_and_username(tmp_path):
    path = write_config(tmp_path, smtp={"host": "mail.example.it", "security": "starttls"})
    path.write_text(path.read_text().replace("  port: 2525\n", ""))
    config = load_config(path)
    assert config.smtp.port == 587
    assert config.smtp.username == "fatture@example.it"


def test_every_problem_reported_with_line_and_key(tmp_path):
    (tmp_path / "export").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        "watch:\n"  # 1
        f"  folder: {tmp_path / 'missing'}\n"  # 2
        "  settle: 2x\n"  # 3
        "sender:\n"  # 4
        "  address: not-an-address\n"  # 5
        "smtp:\n"  # 6
        "  host: smtp.example.it\n"  # 7
        "  port: 465x\n"  # 8
        "  securty: tls\n"  # 9
        "copy_mode: bcc-ish\n"  # 10
        "templates:\n"  # 11
        "  customer_subject: '{doc} {nope}'\n"  # 12
        "customers:\n"  # 13
        "  filename: '^(?P<customer>[^_]+'\n"  # 14
        "retry:\n"  # 15
        "  attempts_now: -1\n"  # 16
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: 9 problems")
    expected = [
        "line 2, watch.folder:",
        "line 3, watch.settle: expected a duration",
        "line 5, sender.address: expected one e-mail address",
        "line 8, smtp.port: expected a whole number from 1 to 65535, got '465x'",
        "line 9, smtp.securty: unknown key (did you mean 'security'?)",
        "line 10, copy_mode: expected one of cc, bcc, separate",
        "line 12, templates.customer_subject: unknown field {nope}",
        "line 14, customers.filename: not a valid regular expression",
        "line 16, retry.attempts_now: expected a whole number from 1 to 100, got -1",
    ]
    for fragment in expected:
        assert fragment in text
    assert caught.value.exit_status == 78


def test_missing_required_keys_are_named(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("watch: {}\nsmtp:\n  security: tls\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "watch.folder: is required" in text
    assert "sender.address: is required" in text
    assert "smtp.host: is required" in text


def test_password_with_security_none_is_refused(tmp_path):
    path = write_config(tmp_path, smtp={"password": "hunter2"})
    with pytest.raises(ConfigError, match="clear text"):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("watch: [\n", "line 2, column 1: YAML syntax error"),
        ("a: 1\na: 2\n", "key given twice"),
    ],
)
def test_unusable_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_precedence(monkeypatch):
    monkeypatch.setenv("INVOICE_MAILER_CONFIG", "/from/env.yaml")
    assert config_path("/from/option.yaml") == Path("/from/option.yaml")
    assert config_path(None) == Path("/from/env.yaml")
    monkeypatch.delenv("INVOICE_MAILER_CONFIG")
    assert config_path(None) == Path("/etc/invoice-mailer/config.yaml")


def test_password_not_in_repr(tmp_path):
    path = write_config(tmp_path, smtp={"security": "tls", "password": "enc:TOPSECRETTOKEN"})
    config = load_config(path)
    assert "TOPSECRETTOKEN" not in repr(config)
    assert config.smtp.password == "enc:TOPSECRETTOKEN"


def test_durations_and_sizes(tmp_path):
    path = write_config(
        tmp_path,
        watch={"settle": "0.5s", "poll_interval": 3, "rescan": "2h"},
        smtp={"max_message_size": "512KB"},
        all_to={"address": "studio@example.it", "close_at": "9:05", "session_gap": "10m"},
    )
    config = load_config(path)
    assert config.watch.settle == 0.5
    assert config.watch.poll_interval == 3.0
    assert config.watch.rescan == 7200.0
    assert config.smtp.max_message_size == 512_000
    assert config.all_to.close_at == "09:05"
    assert config.all_to.session_gap == 600.0


def test_a_template_width_that_would_fill_the_memory_is_refused_with_its_line(tmp_path):
    path = write_config(tmp_path, templates={"customer_body": "{customer_name:>999999999}"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "templates.customer_body: {customer_name}: format spec '>999999999': a width over" in (
        str(caught.value)
    )
