"""Burst: a month-end reprint drops thousands of invoices at once.

Three ways of sending the same invoices to the same sink, in the same run:
- *limit*: the messages serialized before the clock starts, pushed over one connection: what
  the sink can take, with no work at all on the client side;
- *floor*: a plain loop that builds an EmailMessage per file and sends it over one connection:
  what a naive script achieves, with no durability whatsoever;
- *service*: the real `invoice-mailer run`, idle, then all files renamed into its folder.
"""

from __future__ import annotations

import datetime
import io
import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from harness import (
    CUSTOMERS,
    SENDER,
    SETTLE,
    Service,
    Workspace,
    quiesce,
    rename_all,
    warm_up,
    write_invoices,
)
from sink import HOST, Sink

from invoice_mailer import addresses
from invoice_mailer.delivery import messages

PDF_SIZE = 80_000


def _recipient(name: str) -> str:
    code = int(name.rsplit("_C", 1)[1].split(".")[0])
    return f"cliente{code}@bench.example"


def _subject(prefix: str, n: int) -> str:
    return f"Fattura n. {prefix}{n} del 01/02/2026"


def build_messages(files: list[Path], prefix: str) -> list[tuple[str, bytes]]:
    """The messages as the service writes them (same module, same layout), in memory."""
    built = []
    for n, path in enumerate(files, start=1):
        envelope = messages.Envelope(
            sender=SENDER,
            sender_name="Bench S.r.l.",
            to=(_recipient(path.name),),
            subject=_subject(prefix, n),
            body="Gentile cliente,\nin allegato la fattura.\n",
            message_id=addresses.new_message_id(SENDER),
            date=datetime.datetime.now(datetime.UTC).astimezone(),
        )
        out = io.BytesIO()
        attachment = messages.Attachment(path=path, filename=path.name, kind="pdf")
        messages.write_message(envelope, [attachment], "", out)
        built.append((envelope.to[0], out.getvalue()))
    return built


def limit(sink: Sink, built: list[tuple[str, bytes]]) -> float:
    """Seconds to push pre-built messages over one connection (nothing else on the clock)."""
    since = len(sink.arrivals)
    with smtplib.SMTP(HOST, sink.port) as smtp:
        started = time.monotonic()
        for to, data in built:
            smtp.sendmail(SENDER, [to], data)
    arrivals = sink.wait_for(len(built), timeout=120, since=since)
    return arrivals[-1][0] - started


def floor(sink: Sink, files: list[Path]) -> float:
    """Seconds for the naive script: read, EmailMessage, add_attachment, send_message."""
    since = len(sink.arrivals)
    with smtplib.SMTP(HOST, sink.port) as smtp:
        started = time.monotonic()
        for n, path in enumerate(files, start=1):
            message = EmailMessage()
            message["From"] = f"Bench S.r.l. <{SENDER}>"
            message["To"] = _recipient(path.name)
            message["Subject"] = _subject("F", n)
            message["Date"] = datetime.datetime.now(datetime.UTC).astimezone()
            message["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
            message.set_content("Gentile cliente,\nin allegato la fattura.\n")
            message.add_attachment(
                path.read_bytes(), maintype="application", subtype="pdf", filename=path.name
            )
            smtp.send_message(message)
    arrivals = sink.wait_for(len(files), timeout=300, since=since)
    return arrivals[-1][0] - started


def service_burst(
    sink: Sink, workspace: Workspace, files: list[Path], timeout: float = 600
) -> tuple[float, list[float]]:
    """Rename `files` into the running service's folder at once; return the seconds from the
    first rename to the last accepted message, and every arrival time."""
    since = len(sink.arrivals)
    started = rename_all(files, workspace.export)
    arrivals = sink.wait_for(len(files), timeout=timeout, since=since)
    return arrivals[-1][0] - started, [at for at, _size, _subject in arrivals]


def run(root: Path, count: int) -> dict[str, float]:
    """Limit, floor, service, then the limit again, over the same files and the same sink.

    The limit is taken before and after (the mean is the reference): this machine's disk and
    scheduler drift over a minute, and a ratio against one lucky or unlucky run misleads."""
    workspace = Workspace(root / "burst")
    files = write_invoices(workspace.staging, "B", count, PDF_SIZE)
    built = build_messages(files, "L")
    quiesce()
    sink = Sink(workspace.root)
    try:
        limits = [limit(sink, built)]
        floor_s = floor(sink, files)
        service = Service(workspace.config(sink.port), workspace.root / "service.log")
        try:
            service.wait_started()
            warm_up(service, sink, workspace, "W")
            quiesce()
            cpu_before = service.cpu_seconds()
            service_s, _ = service_burst(sink, workspace, files)
            cpu = service.cpu_seconds() - cpu_before
        finally:
            service.stop()
        limits.append(limit(sink, built))
    finally:
        sink.stop()
    limit_s = sum(limits) / len(limits)
    return {
        "count": count,
        "customers": CUSTOMERS,
        "limit_msgs": count / limit_s,
        "limit_runs_msgs": [count / seconds for seconds in limits],
        "floor_msgs": count / floor_s,
        "service_msgs": count / service_s,
        "service_seconds": service_s,
        "service_cpu_ms_per_msg": 1000 * cpu / count,
        "service_vs_limit": limit_s / service_s,
        # The same without the configured wait before a file counts as written (no target:
        # the verdict is on the whole time); the latency benchmark subtracts it likewise.
        "service_vs_limit_after_settle": limit_s / (service_s - SETTLE),
        "service_vs_floor": floor_s / service_s,
    }
