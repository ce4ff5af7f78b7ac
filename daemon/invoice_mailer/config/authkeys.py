"""The keys of modern authentication (smtp.auth, smtp.provider, smtp.password_command,
smtp.oauth): their parsers, the provider preset laid under the config, and the rules that
involve them, each problem with its line.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.model import Config
from invoice_mailer.config.presets import (
    apply_preset,
    apply_receipts_preset,
    preset_named,
    presets,
    receipts_on,
)
from invoice_mailer.errors import Problem
from invoice_mailer.oauth.endpoints import MICROSOFT_IMAP

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$")
LOOPBACK_NAMES = ("localhost",)


def provider_key(value: Any) -> str:
    word = ys.single_line(value).strip().lower()
    known = sorted(presets())
    if word not in known:
        close = difflib.get_close_matches(word, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ys.Invalid(f"unknown provider {word!r} ({hint}known: {', '.join(known)})")
    return word


def argv(value: Any) -> tuple[str, ...]:
    """A command as a list of words: it is run without a shell, so no quoting or pipes."""
    if not isinstance(value, list):
        example = ", ".join(str(value).split()) if isinstance(value, str) else "pass, show, mail"
        raise ys.Invalid(
            f"write the command as a list of words, e.g. [{example}] (it runs without a shell)"
        )
    if not value:
        raise ys.Invalid("the command is empty; write e.g. [/usr/bin/pass, show, mail]")
    words = tuple(ys.single_line(word) for word in value)
    if any("\0" in word for word in words) or not words[0].strip():
        raise ys.Invalid("the command's words must be non-empty text")
    return words


def tenant(value: Any) -> str:
    word = ys.single_line(value).strip()
    if not _TENANT.match(word):
        raise ys.Invalid(
            f"expected a directory (tenant) id or domain such as contoso.onmicrosoft.com, "
            f"common or organizations, got {word!r}"
        )
    return word


def endpoint_url(value: Any) -> str:
    """An https URL; plain http only to this machine (a token must never cross a network bare)."""
    url = ys.single_line(value).strip()
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise ys.Invalid(
        f"expected an https:// URL (http:// only to this machine, 127.0.0.1), got {url!r}"
    )


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fill_from_preset(data: Any, lines: dict[str, int]) -> tuple[str, ...]:
    """Lay the preset named by smtp.provider under the raw `smtp:` mapping, and under
    `receipts:` when receipts are on (in place); the values it fills are reported at the line
    of smtp.provider."""
    smtp = data.get("smtp") if isinstance(data, dict) else None
    if not isinstance(smtp, dict):
        return ()
    preset = preset_named(smtp.get("provider"))
    if preset is None:
        return ()  # an unknown name is reported by provider_key
    filled = apply_preset(smtp, preset)
    receipts = data.get("receipts")
    if receipts_on(receipts):
        filled += apply_receipts_preset(receipts, preset)
    line = lines.get("smtp.provider")
    if line is not None:
        for key in filled:
            lines.setdefault(key, line)
    return tuple(filled)


def auth_checks(config: Config, top: ys.Reader, warnings: list[Problem], username_given: bool):
    """What cannot work with the chosen authentication or provider."""
    smtp = config.smtp
    preset = preset_named(smtp.provider)
    if preset is not None:
        if preset.bcc_refused and config.copy_mode == "bcc":
            top.problem(
                "copy_mode",
                f"{preset.name} refuses messages with Bcc recipients; "
                "use copy_mode: cc or separate",
            )
        if preset.username == "user-id" and not username_given:
            top.problem(
                "smtp.username",
                f"{preset.name} logs in with the user id it gave you, not the mailbox address: "
                "set smtp.username",
            )
        if preset.smtp.get("auth") == "xoauth2" and smtp.auth == "password":
            warnings.append(
                Problem(
                    top.line("smtp.auth"),
                    "smtp.auth",
                    f"{preset.name} turns password logins off by default at the end of "
                    "December 2026; switch to auth: xoauth2 (README: Microsoft 365)",
                )
            )
    if smtp.password and smtp.password_command:
        top.problem(
            "smtp.password_command",
            "give either smtp.password or smtp.password_command, not both",
        )
    if smtp.auth == "none" and (smtp.password or smtp.password_command):
        key = "smtp.password" if smtp.password else "smtp.password_command"
        top.problem(key, "auth: none never logs in; remove it, or choose auth: password")
    if smtp.password_command:
        _check_command(top, smtp.password_command)
    if smtp.auth == "xoauth2":
        _check_xoauth2(config, top)
        _check_imap_scope(config, top, warnings)


def _check_command(top: ys.Reader, command: tuple[str, ...]) -> None:
    program = command[0]
    if os.sep in program:
        path = Path(program)
        if not path.is_file() or not os.access(path, os.X_OK):
            top.problem("smtp.password_command", f"{program} is not an executable file")
    elif shutil.which(program) is None:
        top.problem(
            "smtp.password_command",
            f"{program} is not found in PATH; write its full path (the service's PATH is "
            "systemd's, not your shell's)",
        )


def _check_xoauth2(config: Config, top: ys.Reader) -> None:
    smtp, oauth = config.smtp, config.smtp.oauth
    if smtp.security == "none":
        top.problem(
            "smtp.security",
            "an access token would travel in clear text with security: none; use tls or starttls",
        )
    if smtp.password:
        top.problem(
            "smtp.password",
            "auth: xoauth2 signs in with `invoice-mailer login`, not a password; remove it "
            "(or use smtp.password_command to print an access token)",
        )
    if smtp.password_command:
        return  # the command prints the access token: no sign-in of our own
    if oauth.provider == "google":
        top.problem(
            "smtp.oauth.provider",
            "Google's device sign-in does not grant access to Gmail (only a few scopes are "
            "allowed there); use auth: password with an app password, or a "
            "smtp.password_command that prints an access token",
        )
        return
    if not oauth.client_id:
        top.problem(
            "smtp.oauth.client_id",
            "is required with auth: xoauth2: the Application (client) ID of the app "
            "registration (README: Microsoft 365)",
        )
    if oauth.provider == "custom":
        for key in ("device_url", "token_url"):
            if not getattr(oauth, key):
                top.problem(f"smtp.oauth.{key}", "is required with oauth.provider: custom")


def _check_imap_scope(config: Config, top: ys.Reader, warnings: list[Problem]) -> None:
    """Receipts read with the sender's access tokens need a scope that covers IMAP: the default
    one does (oauth/endpoints.py); one written in the config may not."""
    smtp, imap = config.smtp, config.receipts.imap
    uses_tokens = config.receipts.enabled and imap.password is None and not smtp.password_command
    scope = smtp.oauth.scope
    if not uses_tokens or smtp.oauth.provider != "microsoft" or scope is None:
        return
    if MICROSOFT_IMAP.lower() not in scope.lower().split():
        warnings.append(
            Problem(
                top.line("smtp.oauth.scope"),
                "smtp.oauth.scope",
                f"receipts read the mailbox with the same sign-in, but the scope lacks "
                f"{MICROSOFT_IMAP}: the mailbox would refuse the token; add it (or remove "
                "scope: the default covers SMTP and IMAP), then `invoice-mailer login` again",
            )
        )
