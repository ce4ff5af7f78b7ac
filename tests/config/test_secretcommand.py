"""smtp.password_command (config/secretcommand.py) with real programs: what it prints is the
password, exactly; every way it can fail is one clear sentence; its output is never logged."""

from __future__ import annotations

import logging
import stat
import sys
import time
from pathlib import Path

import pytest

from invoice_mailer.config.secretcommand import run_secret_command
from invoice_mailer.errors import SecretError


def program(tmp_path: Path, body: str, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_the_first_line_exactly_as_printed(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    command = program(tmp_path, "print(' s3cret with spaces '); print('url: https://x')")
    secret = run_secret_command([command], timeout=10)
    assert secret.reveal() == " s3cret with spaces "
    assert "s3cret" not in repr(secret) + str(secret) + caplog.text


def test_arguments_reach_it_without_a_shell(tmp_path):
    command = program(tmp_path, "print(sys.argv[1])")
    assert run_secret_command([command, "$HOME; echo no"], timeout=10).reveal() == "$HOME; echo no"


def test_a_failure_quotes_its_last_complaint_not_its_output(tmp_path):
    body = (
        "print('half-secret'); print('gpg: decryption failed\\n\\x1b[31mno key', file=sys.stderr)"
    )
    command = program(tmp_path, body + "; sys.exit(2)")
    with pytest.raises(SecretError) as failed:
        run_secret_command([command], timeout=10)
    assert str(failed.value) == (
        f"smtp.password_command: {command} failed with exit status 2: \\x1b[31mno key"
    )
    assert "half-secret" not in str(failed.value)


def test_a_command_that_hangs_is_stopped(tmp_path):
    command = program(tmp_path, "time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(SecretError, match=r"did not finish within 0.5 s \(is it waiting for a"):
        run_secret_command([command], timeout=0.5)
    assert time.monotonic() - started < 30  # killed, not waited for


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("pass", "printed nothing on its first line"),
        ("print()", "printed nothing on its first line"),
        ("sys.stdout.buffer.write(b'\\xff\\xfe')", "printed something that is not UTF-8 text"),
    ],
)
def test_nothing_usable_printed(tmp_path, body, expected):
    with pytest.raises(SecretError, match=expected):
        run_secret_command([program(tmp_path, body)], timeout=10)


def test_missing_or_not_executable(tmp_path):
    with pytest.raises(SecretError, match=r"does not exist \(write its full path"):
        run_secret_command([str(tmp_path / "nowhere")], timeout=10)
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    with pytest.raises(SecretError, match="cannot be run: permission denied"):
        run_secret_command([str(plain)], timeout=10)
