"""`invoice-mailer login`: the device sign-in, stored encrypted in state_dir/oauth.token, and a
word to the running service through the ledger (a paused queue tries again at once), as
`retry` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from invoice_mailer.config import credentials
from invoice_mailer.config.model import Config
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.ledger import pauses
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.oauth import deviceflow, tokenfile
from invoice_mailer.oauth.deviceflow import DeviceCode
from invoice_mailer.oauth.endpoints import Endpoints, endpoints_for, receipts_read_mailbox
from invoice_mailer.oauth.tokenfile import TokenSet


@dataclass(frozen=True)
class SignIn:
    endpoints: Endpoints
    code: DeviceCode
    fernet: Fernet


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenSet
    path: Path
    resumed: bool  # a paused queue was told to try again now


def begin(config: Config) -> SignIn:
    """Check that a sign-in is what the config asks for, and get the code to show."""
    smtp = config.smtp
    if smtp.auth != "xoauth2":
        raise InvoiceMailerError(
            f"smtp.auth is {smtp.auth}: `login` is for auth: xoauth2 (README: Microsoft 365)"
        )
    if smtp.password_command:
        raise InvoiceMailerError(
            "smtp.password_command prints the access token: there is nothing to sign in to here"
        )
    endpoints = endpoints_for(smtp, with_imap=receipts_read_mailbox(config))
    fernet = credentials.read_key(credentials.key_path(smtp))  # before the admin signs in
    # Only the folder itself: the service makes its subfolders (as its own user, not root's).
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SignIn(endpoints, deviceflow.request_code(endpoints), fernet)


def finish(config: Config, signin: SignIn) -> SignedIn:
    """Wait for the admin to sign in, store the tokens, and wake a paused queue."""
    tokens = deviceflow.wait_for_sign_in(signin.endpoints, signin.code)
    with tokenfile.locked(config.state_dir):
        path = tokenfile.save(config.state_dir, signin.fernet, tokens)
    return SignedIn(tokens, path, _resume(config.state_dir))


def _resume(state_dir: Path) -> bool:
    if not (state_dir / "ledger.db").exists():
        return False
    with Ledger(state_dir) as ledger, ledger.transaction() as db:
        return pauses.check_now(db, time.time())
