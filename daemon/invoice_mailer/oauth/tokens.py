"""Fresh access tokens from the stored sign-in (RFC 6749 §6): refreshed before they expire,
a few quick retries when the sign-in server cannot be reached, and LoginNeeded when it refuses
the refresh token (invalid_grant: revoked, expired, or the password changed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet

from invoice_mailer.config import credentials
from invoice_mailer.config.model import Config
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.deviceflow import token_set
from invoice_mailer.oauth.endpoints import Endpoints, endpoints_for, receipts_read_mailbox
from invoice_mailer.oauth.tokenfile import TokenSet
from invoice_mailer.oauth.wire import OAuthError, OAuthUnreachable, post_form

log = logging.getLogger(__name__)

LOGIN_ADVICE = "run `invoice-mailer login`"
RETRY_WAITS = (1.0, 3.0)  # between the quick tries of a refresh; then the caller defers


class LoginNeeded(OAuthError):
    """No usable sign-in: nobody signed in yet, or the server refused the refresh token."""


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: float | None  # None: not known (a token printed by smtp.password_command)


class AccessTokens:
    """The access tokens of one process, from state_dir/oauth.token; one thread uses it."""

    def __init__(
        self,
        endpoints: Endpoints,
        state_dir: Path,
        key_file: Path,
        *,
        wait: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """`wait(seconds)` pauses between retries and returns True when the service stops."""
        self.endpoints = endpoints
        self.state_dir = state_dir
        self.key_file = key_file
        self._wait = wait or threading.Event().wait
        self._clock = clock
        self._fernet: Fernet | None = None
        self._cached: TokenSet | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._refused: str | None = None  # an access token the mail server turned down

    def __repr__(self) -> str:
        return f"AccessTokens({self.endpoints.token_url}, {self.state_dir})"

    def token(self) -> AccessToken:
        """A token valid for a while yet; refreshes (and stores the rotation) when needed."""
        now = self._clock()
        cached = self._cached
        if cached and self._stamp == tokenfile.stamp(self.state_dir) and self._good(cached, now):
            return AccessToken(cached.access_token, cached.expires_at)
        fernet = self._key()
        with tokenfile.locked(self.state_dir):
            stored = tokenfile.load(self.state_dir, fernet)
            if stored is None:
                raise LoginNeeded(f"nobody has signed in for XOAUTH2 yet: {LOGIN_ADVICE}")
            newer = cached is not None and cached.obtained_at > stored.obtained_at
            if cached is not None and newer and cached.issuer == stored.issuer:
                stored = cached  # renewed here but not stored (disk full): the newer one counts
            if stored.issuer and stored.issuer != self.endpoints.issuer:
                raise LoginNeeded(
                    "the stored sign-in belongs to another app registration (smtp.oauth "
                    f"changed): {LOGIN_ADVICE}"
                )
            if not self._good(stored, now):
                stored = self._renew(stored, fernet, now)
            self._cached, self._stamp = stored, tokenfile.stamp(self.state_dir)
        return AccessToken(stored.access_token, stored.expires_at)

    def forget(self, token: str) -> None:
        """The mail server refused `token`: the next token() refreshes even if it looks fresh."""
        self._refused = token

    def lacks_scope(self, scope: str) -> bool:
        """Whether the sign-in in use was granted without `scope` (known once token() ran and
        the server named the scopes it granted)."""
        cached = self._cached
        granted = cached.scope.lower().split() if cached is not None else []
        return bool(granted) and scope.lower() not in granted

    def _good(self, tokens: TokenSet, now: float) -> bool:
        return tokens.access_token != self._refused and tokens.fresh(now)

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = credentials.read_key(self.key_file)
        return self._fernet

    def _renew(self, stored: TokenSet, fernet: Fernet, now: float) -> TokenSet:
        try:
            renewed = self._refresh(stored)
        except OAuthUnreachable as exc:
            if stored.access_token != self._refused and stored.usable(now):
                left = stored.expires_at - now
                log.warning(
                    "could not refresh the access token (%s); the current one is good for "
                    "%.0f s more",
                    exc,
                    left,
                )
                return stored
            raise
        try:
            tokenfile.save(self.state_dir, fernet, renewed)
        except OSError as exc:
            log.error(
                "could not store the renewed sign-in in %s (%s); it is kept in memory, but after "
                "a restart `invoice-mailer login` may be needed",
                tokenfile.token_path(self.state_dir),
                exc.strerror or exc,
            )
        self._refused = None
        log.info(
            "access token refreshed, valid until %s",
            datetime.fromtimestamp(renewed.expires_at).astimezone().strftime("%H:%M:%S"),
        )
        return renewed

    def _refresh(self, stored: TokenSet) -> TokenSet:
        """RFC 6749 §6, with a few quick tries while the server cannot be reached."""
        endpoints = self.endpoints
        fields = {**endpoints.client_fields(), "grant_type": "refresh_token"}
        fields["refresh_token"] = stored.refresh_token
        if stored.scope:
            fields["scope"] = stored.scope
        waits = list(RETRY_WAITS)
        while True:
            # The lifetime counts from the request, as the server's may: timed from the answer,
            # the token would outlive the server's by the round trip (and a slow answer's wait).
            asked = self._clock()
            try:
                answer = post_form(
                    endpoints.token_url, fields, endpoints.timeout, endpoints.ca_file
                )
                return token_set(answer, endpoints, asked, stored.refresh_token)
            except OAuthUnreachable:
                if not waits or self._wait(waits.pop(0)):
                    raise
            except OAuthError as refused:
                if refused.error == "invalid_grant":
                    raise LoginNeeded(
                        f"the sign-in server refused the stored sign-in (invalid_grant: revoked, "
                        f"expired or the password changed): {LOGIN_ADVICE}",
                        refused.error,
                    ) from None
                raise


def access_tokens_for(config: Config, wait: Callable[[float], bool] | None = None) -> AccessTokens:
    """The stored sign-in of `config` (smtp.auth: xoauth2 without password_command), for SMTP
    and for the receipts' IMAP login (oauth.xoauth2.imap_login); reads the key now, so a
    missing or open key file is refused at start."""
    smtp = config.smtp
    endpoints = endpoints_for(smtp, with_imap=receipts_read_mailbox(config))
    key_file = credentials.key_path(smtp)
    credentials.read_key(key_file)
    return AccessTokens(endpoints, config.state_dir, key_file, wait=wait)
