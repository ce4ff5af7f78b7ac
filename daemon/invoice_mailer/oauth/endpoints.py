"""Where to sign in and what to ask for: Microsoft's endpoints for a tenant, or a custom
provider's, with the scope the mail protocols need."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from invoice_mailer.config import credentials
from invoice_mailer.config.credentials import TOKEN_PREFIX
from invoice_mailer.config.model import Config, SmtpConfig
from invoice_mailer.errors import SecretError

MICROSOFT = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
# Exchange Online's scopes (learn.microsoft.com, "Authenticate an IMAP, POP or SMTP connection
# using OAuth"); offline_access is what brings a refresh token.
MICROSOFT_SMTP = "https://outlook.office.com/SMTP.Send"
MICROSOFT_IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"
OFFLINE = "offline_access"


@dataclass(frozen=True)
class Endpoints:
    """One app registration at one sign-in server."""

    device_url: str
    token_url: str
    client_id: str
    scope: str | None
    client_secret: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0

    def client_fields(self) -> dict[str, str]:
        """What identifies the client in every request (RFC 6749 §2.3.1, in the body)."""
        fields = {"client_id": self.client_id}
        if self.client_secret:
            fields["client_secret"] = self.client_secret
        return fields

    @property
    def issuer(self) -> dict[str, str]:
        """What a stored sign-in belongs to: another registration cannot use its tokens."""
        return {"token_url": self.token_url, "client_id": self.client_id}


def receipts_read_mailbox(config: Config) -> bool:
    """Whether the receipts stage logs in to the mailbox with the sign-in's access tokens
    (receipts on, no receipts.imap.password of its own): then the scope must cover IMAP."""
    receipts = config.receipts
    return bool(receipts.enabled) and receipts.imap.password is None


def endpoints_for(smtp: SmtpConfig, with_imap: bool = False) -> Endpoints:
    """The endpoints and scope of smtp.oauth (checked by the loader: provider and ids present)."""
    oauth = smtp.oauth
    secret = _client_secret(smtp)
    if oauth.provider == "microsoft":
        base = MICROSOFT.format(tenant=oauth.tenant)
        scopes = [MICROSOFT_SMTP, *([MICROSOFT_IMAP] if with_imap else []), OFFLINE]
        return Endpoints(
            base + "devicecode", base + "token", oauth.client_id or "",
            oauth.scope or " ".join(scopes), secret, smtp.ca_file, smtp.timeout,
        )  # fmt: skip
    if oauth.provider == "custom":
        return Endpoints(
            oauth.device_url or "", oauth.token_url or "", oauth.client_id or "",
            oauth.scope, secret, smtp.ca_file, smtp.timeout,
        )  # fmt: skip
    raise SecretError(
        f"smtp.oauth.provider {oauth.provider} has no sign-in of ours; see `invoice-mailer check`"
    )


def _client_secret(smtp: SmtpConfig) -> str | None:
    """smtp.oauth.client_secret, decrypted with the same key as the password when `enc:`."""
    value = smtp.oauth.client_secret
    if not value:
        return None
    if not value.startswith(TOKEN_PREFIX):
        return value
    secret = credentials.decrypt_token(value, smtp, "smtp.oauth.client_secret")
    return secret.reveal()
