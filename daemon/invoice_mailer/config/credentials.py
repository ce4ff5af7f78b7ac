"""The SMTP password, encrypted in the config with Fernet; the key lives in a separate file.

Key lookup: $CREDENTIALS_DIRECTORY/secret.key (systemd LoadCredential=), then smtp.key_file.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from invoice_mailer.config.model import Config, SmtpConfig
from invoice_mailer.errors import SecretError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "enc:"  # noqa: S105 (a marker before the encrypted token, not a password)
CREDENTIAL_NAME = "secret.key"


class Password:
    """A decrypted password that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Password(***)"

    __str__ = __repr__


def generate_key(path: Path) -> None:
    """Write a new Fernet key readable by its owner only; never overwrite an existing key."""
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise SecretError(
            f"{path} already exists; remove it first if you really want a new key "
            "(passwords encrypted with the old key will then have to be encrypted again)"
        ) from None
    except OSError as exc:
        raise SecretError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
        out.flush()
        os.fsync(out.fileno())


def key_path(smtp: SmtpConfig | None, override: Path | None = None) -> Path:
    """The key file to use: an explicit one, else the systemd credential, else smtp.key_file."""
    if override is not None:
        return override
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        candidate = Path(credentials) / CREDENTIAL_NAME
        if candidate.exists():
            return candidate
    if smtp is None:
        from invoice_mailer.config.model import DEFAULT_KEY_FILE

        return DEFAULT_KEY_FILE
    return smtp.key_file


def _is_credential(path: Path) -> bool:
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    return bool(credentials and path.parent == Path(credentials))


def read_key(path: Path) -> Fernet:
    """Load a key file, refusing one that group or others can read.

    A systemd credential is exempt from the group check: newer systemd hands it over as a
    root-owned 0400 file with an ACL for the service user, which stat() shows as 0440.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SecretError(
            f"key file {path} does not exist; create it with `invoice-mailer genkey`"
        ) from None
    except PermissionError:
        raise SecretError(
            f"cannot read key file {path}: permission denied (it is root's; the service gets it "
            "through systemd's LoadCredential=, so run this command as root)"
        ) from None
    except OSError as exc:
        raise SecretError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        mode = os.fstat(source.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SecretError(f"key file {path} is not a regular file")
        if mode & (0o007 if _is_credential(path) else 0o077):
            raise SecretError(
                f"key file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {path}"
            )
        data = source.read(4096).strip()
    try:
        return Fernet(data)
    except (ValueError, TypeError):
        raise SecretError(f"key file {path} does not hold a valid key") from None


def encrypt_password(password: str, key_file: Path) -> str:
    """The `enc:` token to paste into smtp.password."""
    if not password:
        raise SecretError("the password is empty")
    token = read_key(key_file).encrypt(password.encode("utf-8"))
    return TOKEN_PREFIX + token.decode("ascii")


def smtp_password(smtp: SmtpConfig) -> Password | None:
    """The usable password for `smtp`, decrypted when it is an `enc:` token."""
    return _usable(smtp.password, smtp, "smtp.password")


def imap_password(config: Config) -> Password | None:
    """The password of the mailbox read for receipts (smtp.password unless set): the same key
    decrypts it."""
    imap = config.receipts.imap
    key = "smtp.password" if imap.password == config.smtp.password else "receipts.imap.password"
    return _usable(imap.password, config.smtp, key)


def _usable(stored: str | None, smtp: SmtpConfig, key: str) -> Password | None:
    if not stored:
        return None
    if not stored.startswith(TOKEN_PREFIX):
        log.warning(
            "%s is stored in clear text in the config; "
            "encrypt it with `invoice-mailer encrypt-password`",
            key,
        )
        return Password(stored)
    return decrypt_token(stored, smtp, key)


def decrypt_token(token: str, smtp: SmtpConfig, key: str) -> Password:
    """An `enc:` token of the config (`key` names it in errors), decrypted with the key file."""
    path = key_path(smtp)
    fernet = read_key(path)
    try:
        plain = fernet.decrypt(token[len(TOKEN_PREFIX) :].strip().encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise SecretError(
            f"{key} cannot be decrypted with {path}: wrong key or damaged token; "
            "encrypt it again with `invoice-mailer encrypt-password`"
        ) from None
    return Password(plain.decode("utf-8"))
