"""A discarding SMTP sink (aiosmtpd) in its own process, recording when each message arrived.

It runs apart from the benchmark so that the clients measured (the service, the limit, the
floor) never share an interpreter with it. One line per accepted message goes to a record
file: the CLOCK_MONOTONIC time at which the whole DATA had arrived (the same clock in every
process on Linux), the size, and the Subject. Run as `python sink.py PORT RECORD_FILE 1|0`
(1: offer PIPELINING); it prints "ready" once it listens.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
SIZE_LIMIT = 200 * 1024 * 1024  # the big-file benchmark sends a 34 MB message


class _Recorder:
    """aiosmtpd handler: accept everything, keep nothing but (arrival, size, subject)."""

    def __init__(self, out, pipelining: bool) -> None:
        self.out = out
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # as most providers do; aiosmtpd reads pipelined commands anyway
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope) -> str:
        arrived = time.monotonic()
        content = envelope.content
        head = content[: content.find(b"\r\n\r\n") + 2]
        subject = ""
        start = head.find(b"\r\nSubject: ")
        if start >= 0:
            end = head.find(b"\r\n", start + 2)
            subject = head[start + 11 : end].decode("ascii", "replace")
        self.out.write(f"{arrived:.6f} {len(content)} {subject}\n")
        self.out.flush()
        return "250 OK discarded"


async def _serve(port: int, record: Path, pipelining: bool) -> None:
    from aiosmtpd.smtp import SMTP

    with open(record, "a", encoding="utf-8") as out:
        handler = _Recorder(out, pipelining)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="bench-sink", data_size_limit=SIZE_LIMIT),
            HOST,
            port,
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        async with server:
            await stop.wait()


def free_port() -> int:
    """aiosmtpd cannot listen on port 0 and report it (aiosmtpd #276): find one first."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Sink:
    """The sink process seen from the benchmark: start, read arrivals, stop."""

    # Whether the sinks offer PIPELINING (RFC 2920): yes, like most providers, unless
    # `run.py --no-pipelining` measures the other case.
    pipelining = True

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.record = workdir / "sink-record.txt"
        self.record.touch()
        self._reader = open(self.record, encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self._partial = ""
        self.arrivals: list[tuple[float, int, str]] = []
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed args)
            [sys.executable, __file__, str(self.port), str(self.record), str(int(self.pipelining))],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")

    def poll(self) -> list[tuple[float, int, str]]:
        """Read the arrivals recorded since the last call; all of them stay in `arrivals`."""
        text = self._partial + self._reader.read()
        lines = text.split("\n")
        self._partial = lines.pop()
        new = []
        for line in lines:
            at, size, subject = line.split(" ", 2)
            new.append((float(at), int(size), subject))
        self.arrivals += new
        return new

    def wait_for(self, count: int, timeout: float, since: int = 0) -> list[tuple[float, int, str]]:
        """Wait until `count` arrivals after index `since`; return them (raise on timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) - since < count:
            if time.monotonic() > deadline:
                got = len(self.arrivals) - since
                raise TimeoutError(f"the sink got {got} of {count} messages in {timeout:.0f} s")
            if not self.poll():
                time.sleep(0.005)
        return self.arrivals[since : since + count]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._reader.close()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"))
