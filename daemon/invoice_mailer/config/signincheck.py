"""What `check` finds about the login before connecting: for auth: xoauth2 the key, the client
secret and the stored sign-in (without refreshing it), and one line saying which login the
service will use."""

from __future__ import annotations

import time
from datetime import datetime

from invoice_mailer.config import credentials
from invoice_mailer.config.credentials import TOKEN_PREFIX
from invoice_mailer.config.model import Config
from invoice_mailer.errors import Problem, SecretError
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.endpoints import MICROSOFT_IMAP, receipts_read_mailbox

LOGIN_ADVICE = "run `invoice-mailer login` (as the service's user)"


def check_sign_in(
    config: Config, problems: list[Problem], warnings: list[Problem], lines: dict[str, int]
) -> None:
    """Problems that stop the XOAUTH2 login for good; a missing sign-in is only a warning
    (the service starts, waits with the queue paused, and resumes after `login`)."""
    smtp = config.smtp
    if smtp.auth != "xoauth2" or smtp.password_command:
        return
    line = lines.get("smtp.auth")
    try:
        fernet = credentials.read_key(credentials.key_path(smtp))
        secret = smtp.oauth.client_secret
        if secret and secret.startswith(TOKEN_PREFIX):
            credentials.decrypt_token(secret, smtp, "smtp.oauth.client_secret")
        stored = tokenfile.load(config.state_dir, fernet)
    except SecretError as exc:
        problems.append(Problem(line, "smtp.auth", str(exc)))
        return
    if stored is None:
        warnings.append(Problem(line, "smtp.auth", f"nobody has signed in yet: {LOGIN_ADVICE}"))
    elif _lacks_imap(config, stored.scope):
        warnings.append(
            Problem(
                line,
                "smtp.auth",
                f"the stored sign-in was granted without {MICROSOFT_IMAP} (receipts were "
                f"turned on after it): the mailbox would refuse its tokens; {LOGIN_ADVICE} again",
            )
        )


def _lacks_imap(config: Config, granted: str) -> bool:
    """Receipts read with Microsoft's tokens, and the sign-in says it has no IMAP access."""
    imap = MICROSOFT_IMAP.lower()
    asked = (config.smtp.oauth.scope or imap).lower().split()  # None: the default, with IMAP
    wanted = config.smtp.oauth.provider == "microsoft" and receipts_read_mailbox(config)
    scopes = granted.lower().split()
    return wanted and imap in asked and bool(scopes) and imap not in scopes


def login_line(config: Config) -> str:
    """'login: …' for `check`: the mechanism and where its secret comes from."""
    smtp = config.smtp
    if smtp.auth == "xoauth2":
        if smtp.password_command:
            return f"login: XOAUTH2 as {smtp.username}, access token from smtp.password_command"
        return f"login: XOAUTH2 as {smtp.username} ({smtp.oauth.provider}), {_signed_in(config)}"
    if smtp.auth == "none":
        return "login: none (auth: none)"
    if smtp.password_command:
        return f"login: password as {smtp.username}, from smtp.password_command at each login"
    if not smtp.password:
        return "login: none (no smtp.password: only for a local relay)"
    stored = "encrypted" if smtp.password.startswith(TOKEN_PREFIX) else "in clear text"
    return f"login: password as {smtp.username} (smtp.password, {stored})"


def _signed_in(config: Config) -> str:
    try:
        fernet = credentials.read_key(credentials.key_path(config.smtp))
        stored = tokenfile.load(config.state_dir, fernet)
    except SecretError:
        return "the stored sign-in cannot be read (see above)"
    if stored is None:
        return f"not signed in yet: {LOGIN_ADVICE}"
    if stored.usable(time.time()):
        until = datetime.fromtimestamp(stored.expires_at).astimezone().strftime("%Y-%m-%d %H:%M")
        return f"signed in; access token valid until {until}, renewed by itself"
    return "signed in; the access token is renewed at the next login"
