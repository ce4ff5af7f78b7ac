"""The two HTTP requests OAuth needs (RFC 6749 §3.2, RFC 8628 §3.1): a form POSTed over verified
TLS, a JSON answer read back. Standard library only: two POSTs do not justify a dependency, and
every URL (Microsoft's, a custom provider's, the tests' local server) is used the same way.

Nothing here ever quotes what was sent: the form carries codes and tokens.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from invoice_mailer.errors import InvoiceMailerError

MAX_ANSWER = 64 * 1024  # a token answer is a few KB
_SHOWN = 200  # characters of the server's error_description shown to the admin


class OAuthError(InvoiceMailerError):
    """The sign-in server refused a request; `error` is its RFC 6749 §5.2 error code."""

    def __init__(self, message: str, error: str = ""):
        super().__init__(message)
        self.error = error


class OAuthUnreachable(OAuthError):
    """No usable answer (network, timeout, 5xx, garbled): worth trying again later."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A token endpoint that redirects is misconfigured; following it could carry a code to
    another host, or downgrade to http."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_form(
    url: str, fields: dict[str, str], timeout: float, ca_file: Path | None = None
) -> dict[str, Any]:
    """POST `fields` to `url`; the JSON object answered with 200, or OAuthError."""
    host = urlsplit(url).netloc
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(  # noqa: S310 (the URL is checked: https, or http to loopback)
        url,
        data=urlencode(fields).encode("ascii"),
        headers={"Accept": "application/json", "User-Agent": "invoice-mailer"},
        method="POST",
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            status, body = response.status, response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as answer:
        status, body = answer.code, answer.read(MAX_ANSWER + 1)
        answer.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuthUnreachable(f"cannot reach {host}: {reason}") from None
    if len(body) > MAX_ANSWER:
        raise OAuthUnreachable(f"{host} answered with over {MAX_ANSWER} bytes")
    answer_json = _json_object(body)
    if status == 200 and answer_json is not None:
        return answer_json
    if status in (400, 401) and answer_json is not None and "error" in answer_json:
        error = shown(str(answer_json["error"]))
        said = shown(str(answer_json.get("error_description") or ""))
        raise OAuthError(f"{host} refused: {error}" + (f" ({said})" if said else ""), error)
    if status >= 500 or status == 429 or answer_json is None:
        raise OAuthUnreachable(f"{host} answered HTTP {status} without a usable answer")
    raise OAuthError(f"{host} answered HTTP {status}")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def shown(text: str) -> str:
    """The first line of what a server said, short and without control characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = "".join(c if c.isprintable() else " " for c in first)
    return first if len(first) <= _SHOWN else first[: _SHOWN - 1] + "…"
