"""RFC 8628, the device authorization grant: ask for a code, show the admin where to enter it,
and poll the token endpoint until they have signed in (or declined, or the code expired).

The command line prints; this module only asks and waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from invoice_mailer.oauth.endpoints import Endpoints
from invoice_mailer.oauth.tokenfile import TokenSet
from invoice_mailer.oauth.wire import OAuthError, OAuthUnreachable, post_form, shown

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0  # RFC 8628 §3.2: when the server names none
MIN_INTERVAL = 0.2
SLOW_DOWN = 5.0  # RFC 8628 §3.5: add 5 seconds on slow_down


@dataclass(frozen=True)
class DeviceCode:
    """What the admin needs to sign in, and what the poll needs; the device code is secret."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    message: str | None  # the server's own instruction (Microsoft sends one)


def request_code(endpoints: Endpoints) -> DeviceCode:
    fields = endpoints.client_fields()
    if endpoints.scope:
        fields["scope"] = endpoints.scope
    answer = post_form(endpoints.device_url, fields, endpoints.timeout, endpoints.ca_file)
    try:
        # Google names it verification_url; RFC 8628 verification_uri.
        uri = answer.get("verification_uri") or answer["verification_url"]
        return DeviceCode(
            device_code=str(answer["device_code"]),
            user_code=shown(str(answer["user_code"])),
            verification_uri=shown(str(uri)),
            verification_uri_complete=_optional(answer.get("verification_uri_complete")),
            expires_in=float(answer.get("expires_in") or 900),
            interval=max(MIN_INTERVAL, float(answer.get("interval") or DEFAULT_INTERVAL)),
            message=_optional(answer.get("message")),
        )
    except (KeyError, TypeError, ValueError):
        raise OAuthError("the device authorization answer lacks device_code or user_code") from None


def wait_for_sign_in(
    endpoints: Endpoints,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> TokenSet:
    """Poll until the admin signs in; OAuthError when they decline or the code expires."""
    deadline = clock() + code.expires_in
    interval = code.interval
    fields = {**endpoints.client_fields(), "grant_type": DEVICE_GRANT}
    fields["device_code"] = code.device_code
    while True:
        sleep(interval)
        if clock() > deadline:
            raise OAuthError("the code expired before anyone signed in; run login again")
        asked = now()  # a token's lifetime counts from the request: never later than the server's
        try:
            answer = post_form(endpoints.token_url, fields, endpoints.timeout, endpoints.ca_file)
        except OAuthUnreachable:
            continue  # the network blinked: the code is still good until the deadline
        except OAuthError as refused:
            if refused.error == "authorization_pending":
                continue
            if refused.error == "slow_down":
                interval += SLOW_DOWN
                continue
            if refused.error == "access_denied":
                raise OAuthError("the sign-in was declined; nothing was stored") from None
            if refused.error == "expired_token":
                raise OAuthError(
                    "the code expired before anyone signed in; run login again"
                ) from None
            raise
        return token_set(answer, endpoints, asked, previous_refresh=None)


def token_set(
    answer: dict[str, Any], endpoints: Endpoints, now: float, previous_refresh: str | None
) -> TokenSet:
    """A token answer (RFC 6749 §5.1) as a TokenSet; a refresh that rotates nothing keeps the
    refresh token it used (§6)."""
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("the token answer has no access_token")
    refresh = answer.get("refresh_token") or previous_refresh
    if not isinstance(refresh, str) or not refresh:
        raise OAuthError(
            "the token answer has no refresh_token: the scope must include offline_access "
            "(smtp.oauth.scope)"
        )
    try:
        lifetime = float(answer.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600.0
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=now + lifetime,
        obtained_at=now,
        scope=str(answer.get("scope") or endpoints.scope or ""),
        issuer=endpoints.issuer,
    )


def _optional(value: object) -> str | None:
    return shown(str(value)) if value else None
