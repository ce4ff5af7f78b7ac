"""The SMTP wire below the session: TLS verification settings, DATA's dot-stuffing, and
smtplib with replies that are bounded in time, size and lines."""

from __future__ import annotations

import errno
import os
import select
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from socket import SOCK_STREAM
from typing import TYPE_CHECKING

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.outcome import SmtpFailure

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHUNK_SIZE = 64 * 1024


def dot_stuff(chunk: bytes, tail: bytes) -> bytes:
    """Double the dot that starts a line (RFC 5321 §4.5.2), also right after a chunk boundary.

    `tail` is the last two bytes already sent (b"\\r\\n" at the start of the message).
    """
    joined = tail + chunk
    # A match is 3 bytes and the tail 2: every inserted dot lands after the tail's bytes.
    return joined.replace(b"\r\n.", b"\r\n..")[len(tail) :]


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificates verified against the system store (plus smtp.ca_file), host name checked."""
    # create_default_context() checks the chain and the host name; smtplib alone checks
    # nothing (CPython gh-91826).
    context = ssl.create_default_context()
    if config.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(config.ca_file))
        except OSError as err:
            raise SmtpFailure(
                "tls", "tls", None, "", f"cannot use smtp.ca_file {config.ca_file}: {err}"
            ) from err
    return context


# RFC 5321 §4.5.3.1.5 allows 512 bytes per reply line; real servers stay far below these.
MAX_REPLY_LINE = 4096
MAX_REPLY_LINES = 100
# How often a wait on the server looks up from the socket to see whether the service stops.
SLICE = 0.5


class UnreadableReply(smtplib.SMTPServerDisconnected):
    """The server's words cannot be read as SMTP (too long, not a code, out of step, too slow).

    The text never quotes the server: in the AUTH phase it could echo the credentials.
    """


class Abandoned(smtplib.SMTPServerDisconnected):
    """The service is stopping: the wait on the server was given up."""


class BoundedSMTP(smtplib.SMTP):
    """smtplib.SMTP with a deadline for a whole reply (or write), bounded replies, and a way
    out when the service stops: smtplib's timeout is per read, so a server that trickles one
    byte at a time would hold a thread (and SIGTERM) forever.

    `reply_timeout` is read at each reply: the transport sets data_timeout for the final dot.
    """

    def __init__(self, *args, reply_timeout: float, stopping: Callable[[], bool], **kwargs):
        self.reply_timeout = reply_timeout
        self.stopping = stopping
        self._inbox = bytearray()
        # Commands sent ahead could not be written whole: the reply due before them is still
        # read, nothing after it.
        self.spoiled = False
        super().__init__(*args, **kwargs)

    def getreply(self) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.reply_timeout
        lines: list[bytes] = []
        code = b""
        while True:
            line = self._readline(deadline)
            if len(lines) >= MAX_REPLY_LINES:
                raise self._unreadable(f"a reply of more than {MAX_REPLY_LINES} lines")
            this, mark = line[:3], line[3:4]
            if not (this.isdigit() and b"2" <= this[:1] <= b"5") or mark not in b" -\r\n":
                raise self._unreadable("a reply that does not start with an SMTP code")
            if code and this != code:
                raise self._unreadable("a reply whose lines carry different codes")
            code = this
            lines.append(line[4:].strip(b" \t\r\n"))
            if mark != b"-":
                return int(code), b"\n".join(lines)

    def out_of_step(self) -> bool:
        """Something the server sent that no command asked for (or it hung up): the session
        cannot be trusted to pair the next reply with the next command."""
        sock = self.sock
        if self._inbox or sock is None:
            return True
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        return bool(select.select([sock], [], [], 0)[0])

    def unasked_reply(self) -> bool:
        """Did the server send more than was asked for? Read without waiting; a hang-up (a
        server that closes after its 250) is not that."""
        sock = self.sock
        if self._inbox:
            return True
        if sock is None or not (
            select.select([sock], [], [], 0)[0]
            or (isinstance(sock, ssl.SSLSocket) and sock.pending())
        ):
            return False
        sock.settimeout(0)
        try:
            data = sock.recv(4096)
        except OSError:  # nothing yet (a TLS record that is not data), or reset: not a reply
            return False
        self._inbox += data
        return bool(data)

    def send(self, s: ReadableBuffer | str) -> None:
        if isinstance(s, str):
            s = s.encode(self.command_encoding)
        try:
            self._write(s)
        except (Abandoned, UnreadableReply):
            raise
        except OSError as err:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"connection lost: {err}") from err

    def send_ahead(self, data: bytes) -> None:
        """Commands written before the reply to what was sent last is read (RFC 2920). If the
        connection fails meanwhile, the socket stays open: the server may have answered and
        hung up, and that reply still decides the last message; the session is `spoiled`."""
        try:
            self._write(data)
        except (Abandoned, UnreadableReply):
            raise
        except OSError:
            self.spoiled = True

    def _write(self, data: ReadableBuffer) -> None:
        deadline = time.monotonic() + self.reply_timeout
        view = memoryview(data)
        while view:
            sock = self._ready_socket(deadline, "the server stopped taking data")
            try:
                view = view[sock.send(view) :]
            except TimeoutError:
                continue

    def starttls(self, *args, **kwargs):
        result = super().starttls(*args, **kwargs)
        if self._inbox:  # plain text sent after "220 go ahead" (CVE-2011-0411's injection)
            raise self._unreadable("text after the reply to STARTTLS, before TLS")
        return result

    def close(self) -> None:
        self._inbox.clear()
        super().close()

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        """socket.create_connection, in slices: a connect that hangs (a firewall that drops
        packets) gives way to a stopping service as a slow reply does."""
        deadline = time.monotonic() + timeout
        last: OSError = OSError(f"no address found for {host}")
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                if self.source_address:
                    sock.bind(self.source_address)
                error = sock.connect_ex(address)
                while error == errno.EINPROGRESS and not select.select([], [sock], [], SLICE)[1]:
                    self._check_time(deadline, "timed out")
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if error else 0
                if error:
                    raise OSError(error, os.strerror(error))  # its subclass: refused, unreachable
                sock.settimeout(timeout)  # smtplib's per-operation timeout (STARTTLS)
                return sock
            except Abandoned:
                sock.close()
                raise
            except OSError as err:
                sock.close()
                last = err
        raise last

    def _check_time(self, deadline: float, late: str) -> None:
        if self.stopping():
            raise Abandoned("the service is stopping")
        if time.monotonic() >= deadline:
            raise TimeoutError(late)

    def _readline(self, deadline: float) -> bytes:
        while True:
            end = self._inbox.find(b"\n", 0, MAX_REPLY_LINE)
            if end >= 0:
                line = bytes(self._inbox[: end + 1])
                del self._inbox[: end + 1]
                return line
            if len(self._inbox) >= MAX_REPLY_LINE:
                raise self._unreadable(f"a reply line longer than {MAX_REPLY_LINE} bytes")
            sock = self._ready_socket(deadline, "no complete reply")
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as err:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"connection lost: {err}") from err
            if not data:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self._inbox += data

    def _ready_socket(self, deadline: float, late: str) -> socket.socket:
        """The socket, with a timeout of at most SLICE; raises past the deadline or on stop."""
        sock = self.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        if self.stopping():
            self.close()
            raise Abandoned("the service is stopping")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._unreadable(f"{late} within {self.reply_timeout:g} s")
        sock.settimeout(min(remaining, SLICE))
        return sock

    def _unreadable(self, what: str) -> UnreadableReply:
        self.close()  # never reused out of step
        return UnreadableReply(f"the server sent {what}" if "reply" in what else what)


class BoundedSMTP_SSL(BoundedSMTP, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL with bounded replies (see BoundedSMTP), and its TLS handshake (inside
    connect) in slices too. BoundedSMTP comes first among its bases, so that
    super()._get_socket is the sliced plain connect."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        plain = super()._get_socket(host, port, timeout)
        # smtplib's SMTP.__init__ keeps the host in _host for this very call (its own
        # _get_socket reads it too); typeshed leaves that private attribute out.
        hostname: str = self._host  # type: ignore[attr-defined]
        sock = self.context.wrap_socket(
            plain, server_hostname=hostname, do_handshake_on_connect=False
        )
        sock.settimeout(SLICE)
        while True:
            try:
                sock.do_handshake()
                sock.settimeout(timeout)
                return sock
            except TimeoutError:
                try:
                    self._check_time(deadline, "the TLS handshake timed out")
                except OSError:
                    sock.close()
                    raise
