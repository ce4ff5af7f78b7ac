"""A real SMTP server for tests (and a model for the demo): aiosmtpd on 127.0.0.1 with implicit
TLS, STARTTLS or plain text, optional AUTH, a record of every command verb it received, every
message it accepted, and faults that can be switched on while it runs.

In a test, ask for a fixture of tests/conftest.py: `smtp_server` (plain text, no AUTH; with
`@with_tls_and_starttls`, once over each TLS mode with AUTH as USER/PASSWORD), or
`start_smtp_server(security, **kwargs)` for anything else. Elsewhere (a module-scoped fixture,
a harness), the class is the plain form:

    certs = make_test_certs(tmp_path)  # invoice_mailer.demo.tlscerts
    with SmtpTestServer("tls", cert=certs.server, users={USER: PASSWORD}) as server:
        ...connect to server.host:server.port trusting certs.ca...
        (received,) = server.wait_for_messages(1)
        assert "AUTH" in server.commands and received.tls
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
DEFAULT_SIZE_LIMIT = 33_554_432  # aiosmtpd's own default, advertised as SIZE
# The login a server started with TLS by the smtp_server fixture accepts.
USER = "fatture@example.it"
PASSWORD = "s3cret-Pa55word"

# Runs a test that takes `smtp_server` once over implicit TLS and once over STARTTLS, with AUTH.
with_tls_and_starttls = pytest.mark.parametrize("smtp_server", ["tls", "starttls"], indirect=True)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (a 250 was sent, or it was kept before a dropped reply)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # as the client meant it: dot-stuffing undone, CRLF line ends kept
    message: EmailMessage
    login: str | None  # the AUTH user name; None when the session did not log in
    tls: bool
    eml_path: Path | None


def free_port() -> int:
    """A free TCP port on 127.0.0.1: aiosmtpd's port=0 does not work (aiosmtpd #276, #388)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _RecordingReader(asyncio.StreamReader):
    """Sees each command line before aiosmtpd judges it, so refused commands are recorded too."""

    on_command: Callable[[bytes], None] | None = None
    _in_readline = False

    async def readline(self) -> bytes:
        # aiosmtpd reads AUTH continuation lines (base64 credentials) with readline(): not verbs.
        self._in_readline = True
        try:
            return await super().readline()
        finally:
            self._in_readline = False

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        line = await super().readuntil(separator)
        # Commands are read with the default separator; DATA lines with b"\r\n".
        if separator == b"\n" and not self._in_readline and self.on_command is not None:
            self.on_command(line)
        return line


class _SMTP(SMTP):
    """aiosmtpd's SMTP with the hooks SmtpTestServer needs; one instance per connection."""

    def __init__(self, owner: SmtpTestServer, handler: Any, **kwargs: Any):
        self._owner = owner
        self._verbs: list[str] | None = None
        super().__init__(handler, **kwargs)
        if owner.security == "tls":
            # aiosmtpd only counts STARTTLS as TLS and would hide AUTH on an implicit-TLS port.
            self._auth_require_tls = False

    def _cb_client_connected(self, reader: asyncio.StreamReader, writer: Any) -> None:
        reader.__class__ = _RecordingReader  # same layout; only adds the command tap
        reader.on_command = self._on_command  # type: ignore[attr-defined]
        super()._cb_client_connected(reader, writer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # the second call is the STARTTLS upgrade
        super().connection_made(transport)
        if first:
            self._owner._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._live.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        self._verbs = self._owner._new_connection()
        refusal = self._owner._take_refusal() if self._verbs is not None else None
        if refusal:
            await self.push(refusal)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def _on_command(self, line: bytes) -> None:
        if self._verbs is not None:
            verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            self._owner._record(self._verbs, verb)

    def abort(self) -> None:
        """Cut the connection with no reply, as a crashing server or a broken network would."""
        for transport in (self.transport, self._original_transport):
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]


class _Handler:
    def __init__(self, owner: SmtpTestServer):
        self._owner = owner

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # aiosmtpd leaves this to a handler that has the hook
        if not self._owner._offer_starttls:
            responses = [r for r in responses if "STARTTLS" not in r.upper()]
        if self._owner.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self._owner._rcpt_refusal(address, len(envelope.rcpt_tos))
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        number = self._owner._store(envelope, session)
        drop, delay = self._owner._after_data()
        if drop:
            server.abort()
            await asyncio.sleep(3600)  # cancelled by connection_lost: no reply ever leaves
        if delay:
            await asyncio.sleep(delay)
        if self._owner.before_reply is not None:  # a test looks around before the 250 leaves
            await asyncio.get_running_loop().run_in_executor(None, self._owner.before_reply, number)
        return f"250 2.0.0 Ok: queued as {number}"


class _OAuthHandler(_Handler):
    """Also AUTH XOAUTH2 (as Gmail and Microsoft 365 speak it): the access token is checked by
    the owner's `oauth` callable; a refusal first sends the error as a JSON challenge, waits
    for the client's empty answer, then says 535 (Google's documented exchange)."""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        user, token = _xoauth2_fields(blob)
        accepted = user is not None and self._owner._check_token(user, token)
        if accepted:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
        if await server.challenge_auth(error) is MISSING:
            return AuthResult(success=False, handled=True)
        refusal = "535 5.7.8 Username and Password not accepted"
        return AuthResult(success=False, handled=False, message=refusal)


def _xoauth2_fields(blob: bytes) -> tuple[str | None, str]:
    """user and token from `user=U^Aauth=Bearer T^A^A`; (None, "") when garbled."""
    fields = dict(
        part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part
    )
    auth = fields.get("auth", "")
    if "user" not in fields or not auth.startswith("Bearer "):
        return None, ""
    return fields["user"], auth.removeprefix("Bearer ")


class _Controller(Controller):
    def __init__(self, owner: SmtpTestServer, handler: Any, **kwargs: Any):
        self._owner = owner
        super().__init__(handler, **kwargs)

    def factory(self) -> _SMTP:
        return _SMTP(self._owner, self.handler, **self.SMTP_kwargs)


class SmtpTestServer:
    """A capturing SMTP server on 127.0.0.1 in its own thread; a context manager.

    security: "tls" (implicit, like port 465), "starttls" (STARTTLS required before MAIL and
    AUTH) or "none". `cert` is (cert_path, key_path). With `users`, AUTH is required and checked
    against that dict. With `oauth` (access token -> its user, or None), AUTH XOAUTH2 is
    offered and required; the token's user must be the one logging in. `port` is free_port()
    unless given (a relay coming back where it was
    down). Faults are set with the methods below, also while the server runs.
    """

    def __init__(
        self,
        security: str = "none",
        *,
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        data_size_limit: int = DEFAULT_SIZE_LIMIT,
        eml_dir: Path | None = None,
        hostname: str = "mx.test",
        port: int | None = None,
        pipelining: bool = False,
        oauth: Callable[[str], str | None] | None = None,
    ):
        if security not in ("tls", "starttls", "none"):
            raise ValueError(f"security must be tls, starttls or none, not {security!r}")
        if security != "none" and cert is None:
            raise ValueError(f"security {security!r} needs cert=(cert_path, key_path)")
        self.security = security
        self.host = HOST
        self.port = 0
        self._chosen_port = port
        self._cert = cert
        self._users = users
        self._auth_require_tls = auth_require_tls
        self._data_size_limit = data_size_limit
        self._eml_dir = Path(eml_dir) if eml_dir is not None else None
        self._hostname = hostname
        self.pipelining = pipelining  # offer PIPELINING (aiosmtpd reads pipelined commands)
        self._oauth = oauth
        self._xoauth2: list[tuple[str, str, bool]] = []  # (user, token, accepted)
        # Called with the message's number once its DATA is in, before the 250 (in a worker
        # thread of the server: the client waits for the reply meanwhile).
        self.before_reply: Callable[[int], None] | None = None
        self._controller: _Controller | None = None
        self._live: set[_SMTP] = set()  # touched only in the server's event loop
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ready = False
        self._messages: list[ReceivedMessage] = []
        self._connections: list[list[str]] = []
        self.reset_faults()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> SmtpTestServer:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "server_hostname": self._hostname,  # also spares a slow getfqdn() per connection
            "data_size_limit": self._data_size_limit,
            "auth_require_tls": self._auth_require_tls,
        }
        if self._users is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        if self._oauth is not None:
            kwargs["auth_required"] = True
            if self._users is None:  # XOAUTH2 only, as a tenant without basic authentication
                kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        if self._cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._cert)
            if self.security == "tls":
                kwargs["ssl_context"] = context
            elif self.security == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
        self.port = self._chosen_port or free_port()
        handler = _OAuthHandler(self) if self._oauth is not None else _Handler(self)
        self._controller = _Controller(self, handler, port=self.port, **kwargs)
        self._controller.start()
        with self._lock:
            self._ready = True  # the Controller's own start-up probe is not counted
        return self

    def stop(self) -> None:
        """Cut every client, stop the loop and join its thread; safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        with self._lock:
            self._ready = False
        self._cut_all(controller)
        controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def drop_connections(self) -> None:
        """Cut every open client connection without a word, like an idle timeout or a crash."""
        assert self._controller is not None, "server not running"
        self._cut_all(self._controller)

    def _cut_all(self, controller: _Controller) -> None:
        async def cut() -> None:
            for protocol in list(self._live):
                protocol.abort()
            for _ in range(200):  # connection_lost arrives a loop iteration or two later
                if not self._live:
                    return
                await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(cut(), controller.loop).result(timeout=5)

    # -- what the server saw ---------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> list[list[str]]:
        """The command verbs of each connection, in order (refused connections: empty)."""
        with self._lock:
            return [list(verbs) for verbs in self._connections]

    @property
    def commands(self) -> list[str]:
        """Every command verb received, over all connections: EHLO, STARTTLS, AUTH, MAIL…"""
        with self._lock:
            return [verb for verbs in self._connections for verb in verbs]

    @property
    def xoauth2_logins(self) -> list[tuple[str, str, bool]]:
        """Every AUTH XOAUTH2: (user, access token, accepted), in order."""
        with self._lock:
            return list(self._xoauth2)

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """The first n messages, waiting up to `timeout` seconds for them to arrive."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= n, timeout):
                raise AssertionError(
                    f"expected {n} messages within {timeout} s, got {len(self._messages)}"
                )
            return self._messages[:n]

    # -- faults (thread-safe; each applies from the next connection or command on) ---------

    def reset_faults(self) -> None:
        with self._lock:
            self._refusals: list[str] = []
            self._rcpt_replies: dict[str, str] = {}
            self._auth_fails = False
            self._max_recipients: int | None = None
            self._too_many_reply = ""
            self._drops = 0
            self._data_delay = 0.0
            self._offer_starttls = True

    def refuse_connections(self, n: int = 1, reply: str = "421 4.3.2 Service not available"):
        """Greet the next n connections with `reply` and hang up (a busy or closing server)."""
        with self._lock:
            self._refusals += [reply] * n

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 user unknown") -> None:
        with self._lock:
            self._rcpt_replies[address.lower()] = reply

    def fail_auth(self, fail: bool = True) -> None:
        """Refuse every login with 535, even with the right password (a changed password)."""
        with self._lock:
            self._auth_fails = fail

    def limit_recipients(self, k: int | None, reply: str = "552 5.5.3 Too many recipients") -> None:
        """Refuse every RCPT after the first k accepted ones of a transaction."""
        with self._lock:
            self._max_recipients, self._too_many_reply = k, reply

    def drop_after_data(self, n: int = 1) -> None:
        """For the next n messages: keep the message, then cut the connection before the 250
        (the RFC 1047 window: the client cannot know the message arrived)."""
        with self._lock:
            self._drops = n

    def delay_data_reply(self, seconds: float) -> None:
        with self._lock:
            self._data_delay = seconds

    def offer_starttls(self, offer: bool) -> None:
        """Hide STARTTLS from EHLO (a stripping middlebox or a misconfigured server)."""
        with self._lock:
            self._offer_starttls = offer

    # -- called from the server thread -----------------------------------------------------

    def _new_connection(self) -> list[str] | None:
        with self._lock:
            if not self._ready:
                return None
            verbs: list[str] = []
            self._connections.append(verbs)
            return verbs

    def _record(self, verbs: list[str], verb: str) -> None:
        with self._lock:
            verbs.append(verb)

    def _take_refusal(self) -> str | None:
        with self._lock:
            return self._refusals.pop(0) if self._refusals else None

    def _rcpt_refusal(self, address: str, accepted: int) -> str | None:
        with self._lock:
            if address.lower() in self._rcpt_replies:
                return self._rcpt_replies[address.lower()]
            if self._max_recipients is not None and accepted >= self._max_recipients:
                return self._too_many_reply
            return None

    def _after_data(self) -> tuple[bool, float]:
        with self._lock:
            drop = self._drops > 0
            self._drops -= drop
            return drop, self._data_delay

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        with self._lock:
            ok = not self._auth_fails and self._users.get(login) == password  # type: ignore[union-attr]
        # handled=False: aiosmtpd replies 535 itself on failure
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _check_token(self, user: str, token: str) -> bool:
        assert self._oauth is not None
        accepted = self._oauth(token) == user
        with self._lock:
            self._xoauth2.append((user, token, accepted))
        return accepted

    def _store(self, envelope: Any, session: Any) -> int:
        data = bytes(envelope.original_content)
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode("utf-8", "replace") if auth is not None else None
        with self._lock:
            number = len(self._messages) + 1
        eml_path = None
        if self._eml_dir is not None:
            eml_path = self._eml_dir / f"{number:04d}.eml"
            partial = eml_path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(eml_path)  # whoever watches the folder never sees half a file
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            # Parsed with "\n" line ends, as Python text is: get_content() compares easily.
            message=email.message_from_bytes(  # type: ignore[arg-type]
                data.replace(b"\r\n", b"\n"), policy=policy.default
            ),
            login=login,
            tls=session.ssl is not None or self.security == "tls",
            eml_path=eml_path,
        )
        with self._changed:
            self._messages.append(received)
            self._changed.notify_all()
        return number
