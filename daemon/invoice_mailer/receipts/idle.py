"""IMAP IDLE (RFC 2177), bounded, for the Pythons whose imaplib has none (before 3.14): the
server says when mail arrives, so a receipt is seen in seconds instead of at the next poll.

imaplib reads through a buffered file, and what it has buffered is invisible to select(). So
while idling this module reads the socket itself, a byte at a time (a few dozen bytes a cycle),
and only between two commands, when imaplib has read the whole of the last answer: nothing is
taken from under imaplib. Problems are ConnectionErrors; the caller drops the connection.
"""

from __future__ import annotations

import imaplib
import itertools
import re
import select
import socket
import ssl
import time
from types import TracebackType

MAX_IDLE = 29 * 60.0  # RFC 2177: servers may drop an IDLE older than 30 minutes
_MAX_LINE = 64 * 1024
_MAX_LITERAL = 1024 * 1024
_CHANGE = re.compile(rb"\* \d+ (EXISTS|RECENT|EXPUNGE|FETCH)\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_TAGS = itertools.count(1)


class Idle:
    """One IDLE command: `with Idle(imap, timeout) as idle: changed = idle.wait(60)`; the folder
    is the one examined last."""

    def __init__(self, imap: imaplib.IMAP4, timeout: float) -> None:
        self._imap = imap
        self._sock = imap.sock
        self._timeout = timeout
        self._tag = b"Z%d" % next(_TAGS)  # imaplib's own tags are made of the letters A to P
        self.changed = False

    def __enter__(self) -> Idle:
        if "IDLE" not in self._imap.capabilities:
            raise ConnectionError("the server does not offer IDLE")
        self._imap.send(self._tag + b" IDLE\r\n")
        while True:
            line = self._line()
            if line.startswith(b"+"):
                return self
            if line.startswith(self._tag + b" "):
                raise ConnectionError(f"IDLE refused: {_printable(line)}")
            self._note(line)

    def wait(self, timeout: float, wake: socket.socket | None = None) -> bool:
        """True as soon as the server reports a change; False when `timeout` (at most 29
        minutes) passes first, or as soon as `wake` can be read (it is left unread)."""
        deadline = time.monotonic() + min(timeout, MAX_IDLE)
        while not self.changed:
            left = deadline - time.monotonic()
            if left <= 0 or not self._readable(left, wake):
                break
            first = self._byte_if_any()
            if first is not None:
                self._note(self._line(first))
        return self.changed

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            return  # the conversation is in an unknown state: the caller drops the connection
        self._imap.send(b"DONE\r\n")
        while True:
            line = self._line()
            if line.startswith(self._tag + b" "):
                if not line[len(self._tag) + 1 :].upper().startswith(b"OK"):
                    raise ConnectionError(f"IDLE ended badly: {_printable(line)}")
                return
            self._note(line)

    def _note(self, line: bytes) -> None:
        if line.upper().startswith(b"* BYE"):
            raise ConnectionError(f"the server closed the connection: {_printable(line)}")
        if _CHANGE.match(line):
            self.changed = True

    def _readable(self, seconds: float, wake: socket.socket | None) -> bool:
        """Whether the server sent something; False after `seconds`, or when `wake` can be read."""
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True  # already decrypted, so select() would not see it
        watched = [self._sock] if wake is None else [self._sock, wake]
        ready, _write, _error = select.select(watched, [], [], seconds)
        return self._sock in ready

    def _byte_if_any(self) -> bytes | None:
        """One byte if one is there; None when what woke select() was only TLS bookkeeping."""
        previous = self._sock.gettimeout()
        self._sock.settimeout(0.0)
        try:
            return self._recv(1)
        except (ssl.SSLWantReadError, BlockingIOError):
            return None
        finally:
            self._sock.settimeout(previous)

    def _line(self, start: bytes = b"") -> bytes:
        """One response line (with any literal it announces), read byte by byte."""
        line = bytearray(start)
        while not line.endswith(b"\r\n"):
            if len(line) > _MAX_LINE:
                raise ConnectionError("the server sent an overlong line while idling")
            line += self._recv(1)
            literal = _LITERAL.search(line) if line.endswith(b"}\r\n") else None
            if literal:
                size = int(literal.group(1))
                if size > _MAX_LITERAL:
                    raise ConnectionError("the server sent an oversized literal while idling")
                while size:
                    chunk = self._recv(min(size, 65536))
                    line += chunk
                    size -= len(chunk)
                line += self._recv(1)  # the rest of the line follows the literal
        return bytes(line)

    def _recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        if not data:
            raise ConnectionError("the server closed the connection while idling")
        return data


def _printable(line: bytes) -> str:
    return line.decode("utf-8", "replace").strip()
