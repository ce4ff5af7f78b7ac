"""A real SMTP-speaking server that misbehaves on purpose: plain asyncio on 127.0.0.1 in its
own thread (implicit TLS optional), for what aiosmtpd will not do: answer the final "." with
nothing, a trickle, a line of 9 KB, words without a code or two replies; echo the client's AUTH
line in its 535; offer SMTPUTF8 or not.

    with RogueSmtpServer(after_dot="silent", spare=("admin@example.it",)) as server:
        ...send to server.host:server.port...
        assert len(server.messages) == 2

`spare` recipients get an ordinary 250 (an alert to the admin still arrives). In a test, the
fixture `start_rogue_server(after_dot, **kwargs)` of tests/conftest.py starts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

HOST = "127.0.0.1"
HOLD_DOT_REPLY = 2.0
AFTER_DOT = (
    "ok",
    "ok_then_close",
    "silent",
    "trickle",
    "endless",
    "long_line",
    "not_numeric",
    "extra_line",
)


@dataclass(frozen=True)
class RogueMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage
    mail_line: bytes  # the MAIL FROM line as sent (SMTPUTF8 and the rest)


class RogueSmtpServer:
    """See the module docstring; a context manager that stops every connection it started."""

    def __init__(
        self,
        after_dot: str = "ok",
        *,
        cert: tuple[Path, Path] | None = None,
        smtputf8: bool = False,
        auth_failures: int = 0,
        spare: tuple[str, ...] = (),
        mail_reply: bytes = b"250 2.1.0 Ok\r\n",
        stall_data: bool = False,
        withhold_until_data: bool = False,
        pipelining: bool = False,
        hold_dot_reply: bool = False,
    ):
        if after_dot not in AFTER_DOT:
            raise ValueError(f"after_dot must be one of {AFTER_DOT}")
        self.after_dot = after_dot
        self.host = HOST
        self.port = 0
        self._cert = cert
        self._smtputf8 = smtputf8
        self._auth_failures = auth_failures  # the first n logins get a 535 that echoes them
        self._spare = {address.lower() for address in spare}
        self._mail_reply = mail_reply
        self._stall_data = stall_data  # after 354, never read again
        # Offer PIPELINING and answer MAIL and RCPT only once DATA has come: a client that
        # waits for each reply before the next command never gets one.
        self._withhold = withhold_until_data
        self._pipelining = pipelining or withhold_until_data
        # After each final dot, wait up to HOLD_DOT_REPLY s for the client's next line before
        # the reply: `after_dot_lines` then says what a client sent without waiting for it.
        self._hold_dot_reply = hold_dot_reply
        self.after_dot_lines: list[bytes | None] = []
        self.cut_short: list[bytes] = []  # what came of a message whose DATA never ended
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._messages: list[RogueMessage] = []
        self._lines: list[bytes] = []
        self.connections = 0
        self.closed = 0  # connections the server has closed (or seen closed)
        self.trickling = threading.Event()  # set once a trickle has begun
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def security(self) -> str:
        """As smtp.security names it (tests/support/delivery_bench.bench_config reads it)."""
        return "none" if self._cert is None else "tls"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> RogueSmtpServer:
        loop = self._loop = asyncio.new_event_loop()
        context = None
        if self._cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._cert)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._client, HOST, 0, ssl=context)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=loop.run_forever, name="rogue-smtp")
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> RogueSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw -----------------------------------------------------------------------

    @property
    def messages(self) -> list[RogueMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def lines(self) -> list[bytes]:
        """Every line the client sent, commands and AUTH continuations (not message data)."""
        with self._lock:
            return list(self._lines)

    def accept_logins(self) -> None:
        """From now on every login succeeds (the password was fixed at the provider)."""
        with self._lock:
            self._auth_failures = 0

    def messages_to(self, address: str) -> list[RogueMessage]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    # -- the dialogue ----------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self.connections += 1
        try:
            await self._dialogue(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with self._lock:
                self.closed += 1

    async def _dialogue(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 rogue.test ESMTP\r\n")
        mail_line, rcpts = b"", []
        withheld: list[bytes] = []
        early: bytes | None = None  # a line read while the reply to a dot was held
        while line := early or await reader.readline():
            early = None
            with self._lock:
                self._lines.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                extensions = [b"rogue.test", b"8BITMIME", b"SIZE 50000000", b"AUTH PLAIN LOGIN"]
                if self._smtputf8:
                    extensions.append(b"SMTPUTF8")
                if self._pipelining:
                    extensions.append(b"PIPELINING")
                last = extensions.pop()
                writer.write(b"".join(b"250-" + e + b"\r\n" for e in extensions))
                writer.write(b"250 " + last + b"\r\n")
            elif verb == b"AUTH":
                await self._auth(line, reader, writer)
            elif verb == b"MAIL":
                mail_line, rcpts = line, []
                (withheld.append if self._withhold else writer.write)(self._mail_reply)
            elif verb == b"RCPT":
                rcpts.append(line.split(b"<", 1)[1].split(b">", 1)[0].decode("utf-8"))
                (withheld.append if self._withhold else writer.write)(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                writer.write(b"".join(withheld))
                withheld.clear()
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                if self._stall_data:
                    self.stalled.set()
                    await asyncio.sleep(3600)  # cancelled when the server stops
                early = await self._data(mail_line, tuple(rcpts), reader, writer)
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            elif verb in (b"RSET", b"NOOP", b"HELO"):
                writer.write(b"250 Ok\r\n")
            else:
                writer.write(b"502 5.5.2 not implemented\r\n")
            await writer.drain()

    async def _auth(self, line: bytes, reader, writer) -> None:
        seen = line.strip()
        if line.split()[1].upper() == b"LOGIN":  # user in the AUTH line, password after a 334
            writer.write(b"334 UGFzc3dvcmQ6\r\n")
            await writer.drain()
            answer = await reader.readline()
            with self._lock:
                self._lines.append(answer)
            seen = answer.strip()
        with self._lock:
            refuse = self._auth_failures > 0
        if refuse:
            writer.write(b"535 5.7.8 Authentication failed for " + seen + b"\r\n")
            if line.split()[1].upper() == b"LOGIN":
                with self._lock:
                    self._auth_failures -= 1
        else:
            writer.write(b"235 2.7.0 Authentication successful\r\n")

    async def _data(self, mail_line: bytes, rcpts: tuple[str, ...], reader, writer) -> bytes | None:
        """Read the message, reply as `after_dot` says; the client's next line if it came
        before the reply (hold_dot_reply)."""
        body = bytearray()
        while (line := await reader.readline()) != b".\r\n":
            if not line:
                with self._lock:
                    self.cut_short.append(bytes(body))
                raise ConnectionError("cut during DATA")
            body += line[1:] if line.startswith(b"..") else line
        data = bytes(body)
        early = None
        if self._hold_dot_reply:
            with contextlib.suppress(TimeoutError):
                early = await asyncio.wait_for(reader.readline(), HOLD_DOT_REPLY) or None
            with self._lock:
                self.after_dot_lines.append(early)
        sender = mail_line.split(b"<", 1)[1].split(b">", 1)[0].decode("utf-8")
        message = email.message_from_bytes(data, policy=policy.default)
        with self._lock:
            self._messages.append(RogueMessage(sender, rcpts, data, message, mail_line))  # type: ignore[arg-type]
            number = len(self._messages)
        behaviour = self.after_dot
        if {r.lower() for r in rcpts} <= self._spare:
            behaviour = "ok"
        if behaviour == "ok":
            writer.write(f"250 2.0.0 Ok: queued as {number}\r\n".encode())
        elif behaviour == "ok_then_close":  # a limit of one message per connection
            writer.write(f"250 2.0.0 Ok: queued as {number}\r\n".encode())
            await writer.drain()
            raise ConnectionError("closing after the 250")
        elif behaviour == "silent":
            await asyncio.sleep(3600)  # cancelled when the server stops
        elif behaviour == "trickle":
            writer.write(b"250 2.0.0 Ok")
            self.trickling.set()
            while True:  # one byte a second, never a line end
                await writer.drain()
                await asyncio.sleep(1)
                writer.write(b".")
        elif behaviour == "endless":  # a multi-line reply that never ends
            while True:
                writer.write(b"250-still going\r\n" * 100)
                await writer.drain()
        elif behaviour == "long_line":
            writer.write(b"250 2.0.0 Ok: " + b"x" * 9000 + b"\r\n")
        elif behaviour == "not_numeric":
            writer.write(b"OK queued\r\n")
        elif behaviour == "extra_line":
            writer.write(f"250 2.0.0 Ok: queued as {number}\r\n250 2.0.0 and again\r\n".encode())
        return early
