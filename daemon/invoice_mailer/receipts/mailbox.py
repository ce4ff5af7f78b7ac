"""The sender's mailbox, read over IMAP without ever changing it: the receipts in it are the
office's legal proof, and the office's own mail program reads the same box.

Folders are opened with EXAMINE and messages fetched with BODY.PEEK, so not even the \\Seen flag
moves (imapconnect refuses any other command). Bodies come in batches of bounded size, after a
listing of sizes, so a huge folder or message never sits whole in memory. A cursor (folder,
UIDVALIDITY, last UID) says where the previous pass stopped; a changed UIDVALIDITY means the
server renumbered the folder, which is then read again from its first message.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from invoice_mailer.receipts.idle import Idle
from invoice_mailer.receipts.imapconnect import ImapAccount, MailboxError, connect, server_words

T = TypeVar("T")
# One UID FETCH of bodies holds at most this much in memory: 4 MB keeps reading a backlog of
# 10,000 receipts under 64 MB of RSS (16 MB: 68 MB), one more round trip per 4 MB.
_BATCH_BYTES = 4 * 1024 * 1024
_BATCH_COUNT = 250
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_BODY_LITERAL = re.compile(rb"\bBODY\[\] \{\d+\}$")


@dataclass(frozen=True)
class Cursor:
    """Where the previous pass over a folder stopped."""

    folder: str
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class Fetched:
    """One message, read once; `data` is None when it is larger than the account's cap."""

    folder: str
    uidvalidity: int
    uid: int
    size: int
    data: bytes | None = field(repr=False)

    @property
    def cursor(self) -> Cursor:
        """The cursor that says this message has been looked at."""
        return Cursor(self.folder, self.uidvalidity, self.uid)


class Mailbox:
    """One logged-in IMAP connection: `with Mailbox(account) as box: box.messages(...)`."""

    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self._imap: imaplib.IMAP4 | None = None
        self.counts: dict[str, int] = {}  # messages in each folder when it was last read

    def __enter__(self) -> Mailbox:
        self._imap = connect(self.account)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            # Never CLOSE: on a selected folder it expunges. A failed logout means the
            # connection is already gone, which is all logout wanted.
            with suppress(OSError, imaplib.IMAP4.error):
                imap.logout()

    @property
    def imap(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise MailboxError(f"{self.account.where}: not connected")
        return self._imap

    def messages(self, folder: str, cursor: Cursor | None = None) -> Iterator[Fetched]:
        """Every message of `folder` after the cursor, in UID order; the whole folder when there
        is no cursor or its UIDVALIDITY is not the folder's any more."""
        uidvalidity, count = self._examine(folder)
        self.counts[folder] = count
        if count == 0:
            return
        same = cursor is not None and (cursor.folder, cursor.uidvalidity) == (folder, uidvalidity)
        start = cursor.last_uid + 1 if same and cursor is not None else 1
        batch: list[tuple[int, int]] = []
        batch_bytes = 0
        for uid, size in self._sizes(folder, start):
            if size > self.account.max_message_size:
                yield from self._bodies(folder, uidvalidity, batch)
                batch, batch_bytes = [], 0
                yield Fetched(folder, uidvalidity, uid, size, None)
                continue
            batch.append((uid, size))
            batch_bytes += size
            if len(batch) >= _BATCH_COUNT or batch_bytes >= _BATCH_BYTES:
                yield from self._bodies(folder, uidvalidity, batch)
                batch, batch_bytes = [], 0
        yield from self._bodies(folder, uidvalidity, batch)

    def uidvalidity(self, folder: str) -> int:
        return self._examine(folder)[0]

    def changed_since_read(self, folder: str) -> bool:
        """Whether `folder` (examined again, and left examined for IDLE) holds another number of
        messages than when it was last read: mail that came between a pass and an IDLE."""
        return self._examine(folder)[1] != self.counts.get(folder)

    def hang_up(self) -> None:
        """From another thread (stopping): end a read that waits on the server, at once."""
        imap = self._imap
        sock = getattr(imap, "sock", None)
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def supports_idle(self) -> bool:
        return "IDLE" in self.imap.capabilities

    @contextmanager
    def idling(self) -> Iterator[Idle]:
        """IDLE on the folder examined last: `with box.idling() as idle: idle.wait(60)`."""
        try:
            with Idle(self.imap, self.account.timeout) as idle:
                yield idle
        except OSError as exc:
            raise MailboxError(f"{self.account.where}: IDLE failed ({exc})") from None

    def wait_for_change(self, folder: str, timeout: float) -> bool:
        """Whether `folder` changed within `timeout` (IDLE; servers without it: False at once,
        and the caller polls)."""
        if not self.supports_idle:
            return False
        self._examine(folder)
        with self.idling() as idle:
            return idle.wait(timeout)

    def _examine(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, message count) of the folder, opened read-only."""
        typ, data = self._call(lambda imap: imap.select(_quoted(folder), readonly=True))
        if typ != "OK":
            raise MailboxError(
                f"{self.account.where}: folder {folder!r} cannot be opened: {server_words(data)}; "
                "check receipts.imap.folders"
            )
        _name, validity = self.imap.response("UIDVALIDITY")
        try:
            return int(_first(validity)), int(_first(data) or 0)
        except ValueError:
            raise MailboxError(f"{self.account.where}: {folder!r} has no UIDVALIDITY") from None

    def _sizes(self, folder: str, start: int) -> list[tuple[int, int]]:
        typ, data = self._call(lambda imap: imap.uid("FETCH", f"{start}:*", "(UID RFC822.SIZE)"))
        if typ != "OK":
            raise MailboxError(
                f"{self.account.where}: listing {folder!r} failed: {server_words(data)}"
            )
        found = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            uid, size = _UID.search(line or b""), _SIZE.search(line or b"")
            # "n:*" also names the last message when n is past it (RFC 3501): hence >= start.
            if uid and size and int(uid.group(1)) >= start:
                found[int(uid.group(1))] = int(size.group(1))
        return sorted(found.items())

    def _bodies(
        self, folder: str, uidvalidity: int, batch: list[tuple[int, int]]
    ) -> Iterator[Fetched]:
        if not batch:
            return
        uids = ",".join(str(uid) for uid, _size in batch)
        typ, data = self._call(lambda imap: imap.uid("FETCH", uids, "(UID BODY.PEEK[])"))
        if typ != "OK":
            raise MailboxError(
                f"{self.account.where}: reading {folder!r} failed: {server_words(data)}"
            )
        bodies = _parse_bodies(data)
        for uid, size in batch:
            if uid in bodies:  # absent: expunged by someone else meanwhile, nothing to read
                yield Fetched(folder, uidvalidity, uid, size, bodies[uid])

    def _call(self, command: Callable[[imaplib.IMAP4], T]) -> T:
        try:
            return command(self.imap)
        except imaplib.IMAP4.abort as exc:
            raise MailboxError(
                f"{self.account.where}: connection lost ({server_words(exc)})"
            ) from None
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{self.account.where}: {server_words(exc)}") from None
        except OSError as exc:
            raise MailboxError(f"{self.account.where}: connection lost ({exc})") from None


def _parse_bodies(data: list[bytes | tuple[bytes, bytes] | None]) -> dict[int, bytes]:
    """UID → message bytes from a UID FETCH (UID BODY.PEEK[]) answer. Each message comes as
    (b'7 (UID 7 BODY[] {123}', literal) then b')' — or b' UID 7)' when a server puts the UID
    after the body."""
    bodies: dict[int, bytes] = {}
    uid: int | None = None
    literal: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            head, literal = item[0], item[1]
            match = _UID.search(head)
            uid = int(match.group(1)) if match else None
            if not _BODY_LITERAL.search(head.rstrip()):
                literal = None  # some other literal (a header field), not the message
        elif isinstance(item, bytes) and literal is not None:
            match = _UID.search(item)
            uid = int(match.group(1)) if match else uid
            if uid is not None:
                bodies[uid] = literal
            uid, literal = None, None
    return bodies


def _quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded, pending = [], []
    for char in [*folder, ""]:
        if char and not (" " <= char <= "~"):
            pending.append(char)
            continue
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            encoded.append("&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ","))
            encoded.append("-")
            pending = []
        encoded.append("&-" if char == "&" else char)
    text = "".join(encoded)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _first(values: list[Any]) -> str:
    first = values[0] if values else None
    return first.decode("ascii", "replace") if isinstance(first, bytes) else ""
