"""Opening an SMTP session: the connection (implicit TLS, or plain), EHLO (HELO where it is
refused), STARTTLS where smtp.security asks for it and never a fallback to clear text, the
login, TCP_NODELAY. Each step says where it is through `at`, so that the session (session.py)
classifies a failure by its phase; the session owns the connection from the moment it exists.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.logins import Login
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.delivery.smtp.wire import BoundedSMTP, BoundedSMTP_SSL, tls_context

log = logging.getLogger(__name__)


class Opener:
    """Opens sessions to one server with one login; `at(phase, doing)` and `refusal(code,
    reply)` are the session's (see SmtpTransport)."""

    def __init__(
        self,
        config: SmtpConfig,
        port: int,
        local_hostname: str | None,
        login: Login,
        stopping: Callable[[], bool],
        at: Callable[[str, str], None],
        refusal: Callable[[int, bytes | str], SmtpFailure],
    ):
        self.config = config
        self.port = port
        self.where = f"{config.host}:{port}"
        self.local_hostname = local_hostname
        self.login = login  # its secrets are never logged, never in a repr or an exception
        self.stopping = stopping
        self.at = at
        self.refusal = refusal
        self.context = tls_context(config) if config.security != "none" else None

    def open(self, keep: Callable[[BoundedSMTP], None]) -> float | None:
        """A logged-in session, handed to `keep` as soon as it is connected (what fails after
        that is the session's to close); when its credentials expire (epoch), or None."""
        config = self.config
        self.at("connect", f"connecting to {self.where} ({config.security})")
        # The host goes to the constructor: smtplib checks the certificate against the name
        # given there (a later connect() leaves it empty). A non-220 greeting raises
        # SMTPConnectError with the code.
        smtp: BoundedSMTP
        if config.security == "tls":
            smtp = BoundedSMTP_SSL(
                config.host, self.port, self.local_hostname,
                timeout=config.timeout, context=self.context,
                reply_timeout=config.timeout, stopping=self.stopping,
            )  # fmt: skip
        else:
            smtp = BoundedSMTP(
                config.host, self.port, self.local_hostname, config.timeout,
                reply_timeout=config.timeout, stopping=self.stopping,
            )  # fmt: skip
        keep(smtp)
        self._ehlo(smtp)
        if config.security == "starttls":
            self.at("tls", f"STARTTLS with {self.where}")
            if not smtp.has_extn("starttls"):
                raise SmtpFailure(
                    "tls", "tls", None, "",
                    f"{self.where} does not offer STARTTLS and smtp.security is starttls: "
                    "nothing was sent (never falls back to clear text); check smtp.port "
                    "and smtp.security",
                )  # fmt: skip
            smtp.starttls(context=self.context)
            self._ehlo(smtp)
        valid_until = None
        if self.login.mechanism != "none":
            self.at("auth", f"logging in to {self.where} as {config.username}")
            self.login.perform(smtp, config.username)
            valid_until = self.login.valid_until
        sock = smtp.sock
        assert sock is not None  # noqa: S101 (a type narrowing, not a check: connect() set it)
        # Without this, Nagle holds the small final ".\r\n" until the server's delayed ACK
        # (40 ms on Linux): one stall per message.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.debug(
            "connected to %s, %s%s", self.where,
            sock.version() if isinstance(sock, ssl.SSLSocket) else "no TLS",
            f", logged in as {config.username}" if self.login.mechanism != "none" else "",
        )  # fmt: skip
        return valid_until

    def _ehlo(self, smtp: BoundedSMTP) -> None:
        self.at("ehlo", f"EHLO to {self.where}")
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            code, reply = smtp.helo()
            if not 200 <= code < 300:
                raise self.refusal(code, reply)
