"""smtp.password_command: a program (argv, no shell) whose standard output is the password, or
the access token with auth: xoauth2. Run each time a login needs it, never logged; what it
prints is kept only in a Password, which shows itself nowhere.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from invoice_mailer.config.credentials import Password
from invoice_mailer.errors import SecretError

log = logging.getLogger(__name__)

KEY = "smtp.password_command"
MAX_OUTPUT = 64 * 1024  # a password or a token is far smaller; more is a wrong command
_SHOWN_ERROR = 200  # characters of the command's own complaint (stderr) shown to the admin


def run_secret_command(command: Sequence[str], timeout: float) -> Password:
    """The first line of the command's standard output; SecretError saying what went wrong.

    Standard error is shown (the command's own words about its failure); standard output never.
    """
    program = command[0]
    log.debug("running %s (%s)", KEY, program)
    try:
        done = subprocess.run(  # noqa: S603 (the admin's own argv from the config, no shell)
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise SecretError(f"{KEY}: {program} does not exist (write its full path)") from None
    except PermissionError:
        raise SecretError(f"{KEY}: {program} cannot be run: permission denied") from None
    except subprocess.TimeoutExpired:
        raise SecretError(
            f"{KEY}: {program} did not finish within {timeout:g} s (is it waiting for a "
            "passphrase or a person? it runs without a terminal)"
        ) from None
    except OSError as exc:
        raise SecretError(f"{KEY}: {program} cannot be run: {exc.strerror}") from None
    if done.returncode != 0:
        said = _last_line(done.stderr)
        raise SecretError(
            f"{KEY}: {program} failed with exit status {done.returncode}"
            + (f": {said}" if said else "")
        )
    if len(done.stdout) > MAX_OUTPUT:
        raise SecretError(f"{KEY}: {program} printed over {MAX_OUTPUT} bytes; expected one line")
    try:
        text = done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{KEY}: {program} printed something that is not UTF-8 text") from None
    # The first line exactly as printed (a password may begin or end with a space).
    secret = text.splitlines()[0] if text else ""
    if not secret.strip():
        raise SecretError(f"{KEY}: {program} printed nothing on its first line")
    return Password(secret)


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in lines[-1])
    return shown if len(shown) <= _SHOWN_ERROR else shown[: _SHOWN_ERROR - 1] + "…"
