"""The demo's mailbox: a tiny read-only IMAP server over implicit TLS, on asyncio, holding the
receipts the demo's PEC provider (pecreceipts.py) writes for each message sent.

Why not Dovecot, as the tests use: a newcomer's machine has no IMAP server, and installing one
needs root. This one speaks only what the service's reader sends (CAPABILITY, AUTHENTICATE
PLAIN, EXAMINE, UID FETCH of sizes and BODY.PEEK[], IDLE, NOOP, LOGOUT) for one user and one
folder, INBOX, in memory; everything else gets NO or BAD.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import threading
import time
from pathlib import Path

from invoice_mailer.demo.mailserver import HOST, free_port

_FETCH = re.compile(r"UID FETCH (\S+) \((.*)\)$", re.IGNORECASE)
_GREETING = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE] invoice-mailer demo mailbox ready\r\n"


class DemoImapServer:
    """One user's INBOX, read-only, in its own thread; a context manager."""

    def __init__(self, cert: tuple[Path, Path], username: str, password: str):
        self.host = HOST
        self.port = 0
        self._cert = cert
        self._login = (username, password)
        self._messages: list[bytes] = []  # message n has UID n
        self.uidvalidity = int(time.time())
        self._idlers: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def start(self) -> DemoImapServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self._cert)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            assert self._loop is not None  # noqa: S101 (set just above, before the thread starts)
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, self.host, self.port, ssl=context)
            )
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="demo-imap", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    def __enter__(self) -> DemoImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def deliver(self, data: bytes) -> None:
        """A new message in INBOX (from any thread); idling clients hear of it at once."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._append, data)

    @property
    def count(self) -> int:
        return len(self._messages)

    def _append(self, data: bytes) -> None:
        self._messages.append(data)
        for wake in self._idlers:
            wake.set()

    # -- one client -----------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_GREETING)
        logged_in = False
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            while line := await reader.readline():
                tag, _, rest = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
                command, _, arguments = rest.partition(" ")
                command = command.upper()
                if command == "LOGOUT":
                    writer.write(f"* BYE see you\r\n{tag} OK LOGOUT done\r\n".encode())
                    break
                if command == "CAPABILITY":
                    reply = "* CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE\r\n" + f"{tag} OK done\r\n"
                elif command == "NOOP":
                    reply = f"{tag} OK done\r\n"
                elif command == "AUTHENTICATE" and arguments.upper() == "PLAIN":
                    logged_in = await self._authenticate(reader, writer)
                    reply = f"{tag} OK logged in\r\n" if logged_in else f"{tag} NO refused\r\n"
                elif not logged_in:
                    reply = f"{tag} NO log in first\r\n"
                elif command == "EXAMINE":
                    reply = self._examine(tag, arguments)
                elif command == "UID":
                    writer.write(self._fetch(tag, arguments))
                    await writer.drain()
                    continue
                elif command == "IDLE":
                    await self._idle(tag, reader, writer)
                    continue
                else:
                    reply = f"{tag} NO this demo mailbox is read-only\r\n"
                writer.write(reply.encode())
                await writer.drain()
        writer.close()

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"+ \r\n")
        await writer.drain()
        answer = (await reader.readline()).strip()
        try:
            _zid, user, password = base64.b64decode(answer).decode().split("\0")
        except ValueError:
            return False
        return (user, password) == self._login

    def _examine(self, tag: str, arguments: str) -> str:
        if arguments.strip('"').upper() != "INBOX":
            return f"{tag} NO [NONEXISTENT] only INBOX here\r\n"
        count = len(self._messages)
        return (
            f"* FLAGS (\\Seen)\r\n* {count} EXISTS\r\n* 0 RECENT\r\n"
            f"* OK [UIDVALIDITY {self.uidvalidity}] UIDs valid\r\n"
            f"* OK [UIDNEXT {count + 1}] next\r\n{tag} OK [READ-ONLY] EXAMINE done\r\n"
        )

    def _fetch(self, tag: str, arguments: str) -> bytes:
        match = _FETCH.match(f"UID {arguments}")
        if match is None:
            return f"{tag} NO only UID FETCH here\r\n".encode()
        items = match.group(2).upper()
        out = bytearray()
        for uid in _uids(match.group(1), len(self._messages)):
            data = self._messages[uid - 1]
            if "BODY.PEEK[]" in items:
                out += f"* {uid} FETCH (UID {uid} BODY[] {{{len(data)}}}\r\n".encode()
                out += data + b")\r\n"
            else:
                out += f"* {uid} FETCH (UID {uid} RFC822.SIZE {len(data)})\r\n".encode()
        return bytes(out) + f"{tag} OK FETCH done\r\n".encode()

    async def _idle(
        self, tag: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        wake = asyncio.Event()
        self._idlers.add(wake)
        seen = len(self._messages)
        writer.write(b"+ idling\r\n")
        await writer.drain()
        done = asyncio.ensure_future(reader.readline())
        try:
            while True:
                woken = asyncio.ensure_future(wake.wait())
                finished, _ = await asyncio.wait({done, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if len(self._messages) != seen:
                    seen = len(self._messages)
                    writer.write(f"* {seen} EXISTS\r\n".encode())
                    await writer.drain()
                wake.clear()
                if done in finished:
                    break
        finally:
            self._idlers.discard(wake)
        writer.write(f"{tag} OK IDLE done\r\n".encode())
        await writer.drain()


def _uids(text: str, last: int) -> list[int]:
    """A UID set (`1:*`, `3,5,7`, `2:4`) of this mailbox, where UID n is message n."""
    found: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        start = last if low == "*" else int(low)
        end = start if not high else last if high == "*" else int(high)
        found.update(range(min(start, end), max(start, end) + 1))
    return sorted(uid for uid in found if 1 <= uid <= last)
