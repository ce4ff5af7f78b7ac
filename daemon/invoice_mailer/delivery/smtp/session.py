"""The SMTP session: verified TLS, AUTH only under TLS (opening.py opens it), one connection
reused for consecutive messages, each message streamed from disk, and every failure classified
the way docs/DESIGN.md's failure table says. No retries here: the delivery stage wraps `send`
with tenacity.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from invoice_mailer.config.credentials import Password
from invoice_mailer.config.model import DEFAULT_PORTS, SmtpConfig
from invoice_mailer.delivery.smtp.logins import Login, PasswordLogin
from invoice_mailer.delivery.smtp.opening import Opener
from invoice_mailer.delivery.smtp.outcome import (
    ENVELOPE_PHASES,
    SendResult,
    SmtpFailure,
    classify,
    failure_of,
    reply_text,
    sentence,
)
from invoice_mailer.delivery.smtp.transaction import Announced, Transaction, Upcoming
from invoice_mailer.delivery.smtp.wire import (
    BoundedSMTP,
)
from invoice_mailer.errors import InvoiceMailerError

log = logging.getLogger(__name__)

# A session that accepted a message less than this ago is used without an RSET check.
TRUST_CLEAN_SESSION = 2.0
# Once the service is stopping, a reply already on its way gets this long to arrive.
STOP_GRACE = 2.0


class SmtpTransport:
    """One SMTP client connection, opened on demand and reused; used from one thread only."""

    def __init__(
        self,
        config: SmtpConfig,
        login: Login | str | None,
        local_hostname: str | None = None,
        stop: threading.Event | None = None,
    ):
        """`login`: how to log in (logins.make_login), or a plain password, or None for none.
        `stop` set: waits on the server end within STOP_GRACE (the service is stopping)."""
        if login is None or isinstance(login, str):
            login = _fixed_password(login)
        if config.security == "none" and login.mechanism != "none":
            raise SmtpFailure(
                "tls", "auth", None, "",
                "refusing to send the SMTP password in clear text (smtp.security is none); "
                "use tls or starttls",
            )  # fmt: skip
        self._config = config
        self._login = login  # its secrets are never logged, never in a repr or an exception
        self._valid_until: float | None = None  # the session's credentials expire then (epoch)
        self._port = config.port or DEFAULT_PORTS[config.security]
        self._where = f"{config.host}:{self._port}"
        self._smtp: BoundedSMTP | None = None
        self._clean_at: float | None = None  # when the session last ended a message cleanly
        self._unchecked = False  # the current session was trusted without an RSET
        self._phase = "connect"
        self._doing = ""
        self._stop = stop
        self._stop_seen: float | None = None
        self._opener = Opener(
            config, self._port, local_hostname, login, self._stopping, self._at, self._refusal
        )
        # The next message's envelope, sent behind the last one's dot; until its 354 is read
        # and its content sent, the session is in DATA: never reset, never QUIT, only closed.
        self._announced: Announced | None = None

    def __repr__(self) -> str:
        return f"SmtpTransport({self._where}, security={self._config.security})"

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> str:
        """Connect, start TLS, log in and QUIT, sending nothing: `invoice-mailer check --smtp`."""
        self.close()
        smtp = self._connection()
        sock = smtp.sock
        tls = sock.version() if isinstance(sock, ssl.SSLSocket) else "no TLS"
        login = self.login_description()
        self.close()
        return f"{self._where} ({self._config.security}), {tls}, {login}"

    def login_description(self) -> str:
        """How the last connection logged in, for `check --smtp` and `send-test`."""
        return self._login.describe(self._config.username)

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message_path: Path,
        size: int,
        while_waiting: Callable[[], Upcoming | None] = lambda: None,
    ) -> SendResult:
        """Send the CRLF message file at `message_path` (`size` bytes) to `recipients`;
        `while_waiting` runs while the server works on the whole message, and may name the
        message that comes next (Transaction.run)."""
        if not recipients:
            raise ValueError("send() needs at least one recipient")
        announced = self._take_announced(Upcoming(sender, tuple(recipients), message_path, size))
        try:
            message = open(message_path, "rb")  # noqa: SIM115 (closed below, whatever happens)
        except OSError as err:
            if announced is not None:
                self._discard(polite=False)
            raise InvoiceMailerError(f"cannot read the message {message_path}: {err}") from err
        with message:

            def run(announced: Announced | None) -> Callable[[Transaction], SendResult]:
                return lambda t: t.run(sender, recipients, message, size, while_waiting, announced)

            try:
                smtp = self._smtp if announced is not None else None
                return self._transaction(smtp or self._connection(), run(announced))
            except SmtpFailure as failure:
                # A session trusted without a check (used a moment ago) that the server closed
                # meanwhile (a per-connection message limit): reconnect once, at once.
                if not (
                    self._unchecked and failure.phase == "mail" and failure.code in (None, 421)
                ):
                    raise
                log.debug("%s closed the connection between messages; reconnecting", self._where)
                message.seek(0)
                return self._transaction(self._connection(), run(None))

    def _take_announced(self, upcoming: Upcoming) -> Announced | None:
        """The announced envelope if it is this very message's; another message (the one
        announced is not sent after all: a `retry`, a pause, stopping) closes the session, the
        only way out of DATA that cannot deliver anything."""
        announced, self._announced = self._announced, None
        if announced is None:
            return None
        smtp = self._smtp
        if announced.upcoming == upcoming and smtp is not None and not smtp.spoiled:
            self._unchecked = True  # trusted as a session just used: a 421 now reconnects
            return announced
        log.debug("the message announced to %s does not follow: closing", self._where)
        self._discard(polite=False)
        return None

    def _transaction(
        self, smtp: BoundedSMTP, run: Callable[[Transaction], SendResult]
    ) -> SendResult:
        self._clean_at = None
        with self._guard():
            transaction = Transaction(
                smtp, self._where, self._config, self._at, self._refusal, self._announcing
            )
            result = run(transaction)
        self._clean_at = time.monotonic()
        return result

    def _announcing(self, announced: Announced) -> None:
        self._announced = announced

    def close(self) -> None:
        """QUIT politely; the next send() opens a new connection."""
        self._discard(polite=True)

    # -- the session -----------------------------------------------------------------------

    def _connection(self) -> BoundedSMTP:
        """The open session, or a new one. A session whose last message was accepted a moment
        ago is clean and alive: no RSET round trip (one per message in a burst)."""
        self._unchecked = False
        clean_at = self._clean_at
        recent = clean_at is not None and time.monotonic() - clean_at < TRUST_CLEAN_SESSION
        until = self._valid_until
        if self._smtp is not None and until is not None and time.time() >= until:
            # A server may end a session whose token expired: a new one, with a fresh token.
            log.debug("the access token of the session with %s expired: reconnecting", self._where)
            self._discard(polite=True)
        if self._smtp is not None and self._smtp.out_of_step():
            log.debug("%s sent what nobody asked for, or hung up: reconnecting", self._where)
            self._discard(polite=False)
        if self._smtp is not None and recent:
            self._unchecked = True
            return self._smtp
        if self._smtp is not None:
            try:
                if self._smtp.rset()[0] == 250:
                    return self._smtp
            except OSError:
                pass
            log.debug("connection to %s lost while idle, reconnecting", self._where)
            self._discard(polite=False)
        with self._guard():
            return self._open()

    def _open(self) -> BoundedSMTP:
        self._valid_until = self._opener.open(self._keep)
        assert self._smtp is not None  # noqa: S101 (a type narrowing: open() handed it over)
        return self._smtp

    def _keep(self, smtp: BoundedSMTP) -> None:
        """The connection being opened: from here a failure is this session's to close."""
        self._smtp = smtp

    def _stopping(self) -> bool:
        if self._stop is None or not self._stop.is_set():
            return False
        if self._stop_seen is None:
            self._stop_seen = time.monotonic()
        return time.monotonic() - self._stop_seen >= STOP_GRACE

    # -- failures --------------------------------------------------------------------------

    def _at(self, phase: str, doing: str) -> None:
        self._phase, self._doing = phase, doing

    def _refusal(self, code: int, reply: bytes | str) -> SmtpFailure:
        text = reply_text(reply)
        kind = classify(self._phase, code, None)
        return SmtpFailure(kind, self._phase, code, text, sentence(kind, code, text, self._doing))

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn whatever smtplib raises into an SmtpFailure, and leave the session usable."""
        try:
            yield
        except SmtpFailure as failure:
            smtp = self._smtp
            refused = failure.code != 421 and failure.phase in ENVELOPE_PHASES
            if self._announced is not None:  # the next envelope is out: in DATA, no RSET
                self._discard(polite=False)
            elif refused and smtp is not None and not smtp.out_of_step():
                try:  # a refused message leaves a healthy session: reset it for the next one
                    smtp.rset()
                except OSError:
                    self._discard(polite=False)
            else:
                self._discard(polite=failure.code not in (None, 421))
            raise
        except OSError as err:
            self._discard(polite=False)
            translated = failure_of(err, self._phase, self._doing)
            # In the AUTH phase not even the chained exception: smtplib's keeps the server's words.
            raise translated from (None if translated.phase == "auth" else err)

    def _discard(self, polite: bool) -> None:
        self._clean_at = None
        if self._announced is not None:
            polite = False  # QUIT would be taken as the announced message's content
            self._announced = None
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if polite:
                smtp.quit()
        except OSError:
            pass
        finally:
            smtp.close()


def _fixed_password(password: str | None) -> Login:
    """A password given as text (tests, the benchmark harness), or no login at all."""
    if password is None:
        return Login()
    secret = Password(password)
    return PasswordLogin(lambda: secret, "a password")
