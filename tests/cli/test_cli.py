"""The real command line in a subprocess: exit statuses, key handling, one-line errors."""

from __future__ import annotations

from tests.support.cli import run_cli
from tests.support.configs import write_config


def test_genkey_encrypt_check_round_trip(tmp_path):
    key = tmp_path / "secret.key"
    made = run_cli("genkey", "--key-file", str(key))
    assert made.returncode == 0, made.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    encrypted = run_cli("encrypt-password", "--key-file", str(key), stdin="Pa55-w0rd!\n")
    assert encrypted.returncode == 0, encrypted.stderr
    token = encrypted.stdout.strip()
    assert token.startswith("enc:") and "Pa55-w0rd!" not in encrypted.stdout + encrypted.stderr

    config = write_config(
        tmp_path,
        smtp={
            "host": "smtps.example.it",
            "security": "tls",
            "password": token,
            "key_file": str(key),
        },
    )
    checked = run_cli("-c", str(config), "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == (
        f"config OK: watching {tmp_path / 'export'}, no address book, "
        "sending via smtps.example.it:2525 (tls)"
    )
    assert "Pa55-w0rd!" not in checked.stdout + checked.stderr


def test_genkey_refuses_overwrite_exit_78(tmp_path):
    key = tmp_path / "secret.key"
    assert run_cli("genkey", "--key-file", str(key)).returncode == 0
    again = run_cli("genkey", "--key-file", str(key))
    assert again.returncode == 78
    assert "already exists" in again.stderr


def test_check_lists_problems_and_exits_78(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("watch:\n  folder: /nope\n  setle: 2s\nsender: {address: x}\n")
    result = run_cli("-c", str(config), "check")
    assert result.returncode == 78
    assert f"{config}: 4 problems" in result.stderr
    assert "line 3, watch.setle: unknown key (did you mean 'settle'?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_from_environment_and_wrong_key(tmp_path):
    key, other = tmp_path / "a.key", tmp_path / "b.key"
    run_cli("genkey", "--key-file", str(key))
    run_cli("genkey", "--key-file", str(other))
    token = run_cli("encrypt-password", "--key-file", str(key), stdin="pw\n").stdout.strip()
    config = write_config(
        tmp_path, smtp={"security": "tls", "password": token, "key_file": str(other)}
    )
    result = run_cli("check", env={"INVOICE_MAILER_CONFIG": str(config)})
    assert result.returncode == 78
    assert "wrong key or damaged token" in result.stderr
    assert str(other) in result.stderr


def test_usage_error_exits_2_and_version(tmp_path):
    assert run_cli("no-such-command").returncode == 2
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("invoice-mailer ")


def test_directory_as_config_is_one_line(tmp_path):
    result = run_cli("-c", str(tmp_path), "check")
    assert result.returncode == 78
    assert result.stderr.strip() == f"invoice-mailer: {tmp_path}: is a directory, not a file"
