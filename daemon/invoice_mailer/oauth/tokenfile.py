"""state_dir/oauth.token: the sign-in (refresh token, and the last access token with its
expiry), encrypted with the same Fernet key as the password, mode 0600, replaced atomically.

`login`, `check --smtp`, `send-test` and the service may all refresh; an flock on
oauth.token.lock makes one refresh at a time, so a rotating refresh token is never spent twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from invoice_mailer.errors import SecretError

TOKEN_FILE = "oauth.token"  # noqa: S105 (a file name, not a secret)
LOCK_FILE = "oauth.token.lock"


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint gave; the tokens show themselves in no repr."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float  # epoch seconds
    obtained_at: float
    scope: str = ""
    issuer: dict[str, str] = field(default_factory=dict)  # token_url and client_id

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.obtained_at)

    def fresh(self, now: float) -> bool:
        """Still far enough from expiry: a quarter of its life, at most 5 minutes, remains."""
        margin = min(300.0, self.lifetime / 4)
        return bool(self.access_token) and self.expires_at - now > margin

    def usable(self, now: float) -> bool:
        """Not expired yet, with a moment kept for the server to see it (2 s; less for the
        tests' short-lived tokens)."""
        margin = min(2.0, self.lifetime / 8)
        return bool(self.access_token) and self.expires_at - now > margin


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def load(state_dir: Path, fernet: Fernet) -> TokenSet | None:
    """The stored sign-in, or None when there is none yet."""
    path = token_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise SecretError(
            f"cannot read {path}: permission denied; run `invoice-mailer login` as the "
            "service's user (runuser -u invoice-mailer -- invoice-mailer login)"
        ) from None
    with os.fdopen(fd, "rb") as source:
        data = source.read(1 << 20)
    try:
        fields = json.loads(fernet.decrypt(data.strip()))
        return TokenSet(
            access_token=str(fields.get("access_token") or ""),
            refresh_token=str(fields["refresh_token"]),
            expires_at=float(fields.get("expires_at") or 0),
            obtained_at=float(fields.get("obtained_at") or 0),
            scope=str(fields.get("scope") or ""),
            issuer=dict(fields.get("issuer") or {}),
        )
    except (InvalidToken, ValueError, KeyError, TypeError):
        raise SecretError(
            f"{path} cannot be decrypted with the key (another key, or damaged); "
            "sign in again with `invoice-mailer login`"
        ) from None


def save(state_dir: Path, fernet: Fernet, tokens: TokenSet) -> Path:
    """Write the sign-in: temp file 0600, fsync, rename over the old one, fsync the folder.

    As root (a `login` by sudo), the file is given to the state folder's owner: the service
    reads it as that user.
    """
    path = token_path(state_dir)
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at,
        "obtained_at": tokens.obtained_at,
        "scope": tokens.scope,
        "issuer": tokens.issuer,
    }
    data = fernet.encrypt(json.dumps(body).encode("utf-8"))
    partial = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(partial, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        _give_to_owner(fd, state_dir)
        os.write(fd, data + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    folder = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def stamp(state_dir: Path) -> tuple[int, int, int] | None:
    """What changes when another process writes the file (a new `login`)."""
    try:
        info = token_path(state_dir).stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


@contextlib.contextmanager
def locked(state_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """One refresh at a time across processes (flock on oauth.token.lock)."""
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        _give_to_owner(fd, state_dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SecretError(
                        f"{state_dir / LOCK_FILE} stayed locked for {timeout:.0f} s "
                        "(another invoice-mailer is refreshing the sign-in)"
                    ) from None
                time.sleep(0.05)  # waiting for another process's lock: no event to wait on
        yield
    finally:
        os.close(fd)


def _give_to_owner(fd: int, state_dir: Path) -> None:
    if os.geteuid() != 0:
        return
    owner = state_dir.stat()
    if owner.st_uid != 0:
        os.fchown(fd, owner.st_uid, owner.st_gid)
