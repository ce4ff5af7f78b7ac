"""Building messages (issue 19): CPU per 80 KB message of write_message's path (after) against
the stdlib's (before: messages.reference_plan, which the tests hold byte-identical, and the
regex that cut base64 into lines before), for 2,000 messages of 50 customers, and per part.

    .venv/bin/python bench/building.py [--count 2000]

Each message is built into memory (writing the file is the same either way). Times are CPU
time of this process (time.process_time), the best of 3 alternating rounds: other processes
on the machine change them less than wall time.
"""

from __future__ import annotations

import argparse
import binascii
import datetime
import io
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from invoice_mailer.delivery import messages, mimeparts
from invoice_mailer.delivery.messagetext import compose_text, safe_filename

ROUNDS = 3
CUSTOMERS = 50
SIGNATURE = "--\nRossi S.r.l. - Amministrazione\nVia Roma 1, 20100 Milano\n"
BODY = "Gentile cliente,\nin allegato la fattura in formato PDF.\nCordiali saluti\n"
ROME = datetime.timezone(datetime.timedelta(hours=1))
Case = tuple[messages.Envelope, list[messages.Attachment], str]


def cases(pdfs: list[Path], subject: str, body: Callable[[int], str]) -> list[Case]:
    """One message per PDF: 50 customers, one or two To, a Cc on every other one."""
    built = []
    for number, pdf in enumerate(pdfs, 1):
        customer = number % CUSTOMERS
        to = [f"amministrazione@cliente{customer}.example.it"]
        if customer % 3 == 0:
            to.append(f"titolare@cliente{customer}.example.it")
        envelope = messages.Envelope(
            sender="fatture@pec.rossi.example.it",
            sender_name="Rossi S.r.l.",
            to=tuple(to),
            cc=("archivio@rossi.example.it",) if number % 2 else (),
            subject=subject.format(number=number),
            body=body(number),
            message_id=f"<{number:032x}@pec.rossi.example.it>",
            date=datetime.datetime(2026, 3, 2, 9, 30, tzinfo=ROME),
        )
        built.append((envelope, [messages.Attachment(pdf, pdf.name, "pdf")], SIGNATURE))
    return built


SCENARIOS: dict[str, tuple[str, Callable[[int], str]]] = {
    "ASCII subject, one body": ("Fattura n. {number} del 02/03/2026", lambda n: BODY),
    "subject with è, one body": ("Fattura n. {number} del 02/03/2026 è allegata", lambda n: BODY),
    "ASCII body per invoice": (
        "Fattura n. {number} del 02/03/2026",
        lambda n: f"Gentile Cliente {n % CUSTOMERS},\nin allegato Fattura n. {n} del 02/03/2026.\n",
    ),
    "body per invoice with à": (
        "Fattura n. {number} del 02/03/2026",
        lambda n: f"Gentile Società {n % CUSTOMERS},\nin allegato Fattura n. {n} del 02/03/2026.\n",
    ),
}


def old_stream_base64(attachment: messages.Attachment, out: io.BytesIO) -> int:
    """How attachments were encoded before: a regex findall cut the base64 into lines."""
    lines_of = re.compile(rb".{1,76}").findall
    written = 0
    with open(attachment.path, "rb") as source:
        while chunk := source.read(messages.CHUNK):
            encoded = messages.CRLF.join(lines_of(binascii.b2a_base64(chunk, newline=False)))
            written += out.write(encoded + messages.CRLF)
    return written


def build_before(case: Case, out: io.BytesIO, token: Callable[[int], str] | None = None) -> None:
    plan = messages.reference_plan(*case, *([token] if token else []))
    for piece in plan:
        if isinstance(piece, messages.Attachment):
            old_stream_base64(piece, out)
        else:
            out.write(piece)


def build_after(case: Case, out: io.BytesIO) -> None:
    messages.write_message(*case, out)


def same_bytes(built: list[Case]) -> None:
    """Before and after build the same messages (or the figures would compare other work)."""
    for case in built:
        before, after = io.BytesIO(), io.BytesIO()
        build_after(case, after)
        boundary = re.search(rb'boundary="=_([0-9a-f]{32})"', after.getvalue())
        token = boundary.group(1).decode() if boundary else ""
        build_before(case, before, lambda _bytes, token=token: token)
        if before.getvalue() != after.getvalue():
            raise SystemExit(f"different bytes for {case[0].message_id}")


def cpu_ms_each(work: Callable[[Case], object], items: Iterable[Case]) -> float:
    items = list(items)
    started = time.process_time()
    for item in items:
        work(item)
    return (time.process_time() - started) * 1000 / len(items)


def best(before: Callable[[], float], after: Callable[[], float]) -> tuple[float, float]:
    """The best of ROUNDS rounds of each, taking turns."""
    rounds = [(before(), after()) for _ in range(ROUNDS)]
    return min(b for b, _ in rounds), min(a for _, a in rounds)


def whole(build: Callable[[Case, io.BytesIO], None], built: list[Case]) -> float:
    out = io.BytesIO()

    def one(case: Case) -> None:
        out.seek(0)
        out.truncate()
        build(case, out)

    return cpu_ms_each(one, built)


def parts(built: list[Case]) -> list[tuple[str, float, float]]:
    """(part, before ms, after ms) per message; headers are the plan less the parts."""

    def attachment(case: Case) -> messages.Attachment:
        return case[1][0]

    def text_before(case: Case) -> bytes:
        return mimeparts.stdlib_text_part(compose_text(case[0].body, case[2]))

    def head_before(case: Case) -> bytes:
        return mimeparts.stdlib_attachment_head("pdf", safe_filename(attachment(case).filename))

    def head_after(case: Case) -> bytes:
        return mimeparts.attachment_head("pdf", safe_filename(attachment(case).filename))

    out = io.BytesIO()

    def base64_before(case: Case) -> int:
        out.seek(0)
        return old_stream_base64(attachment(case), out)

    def base64_after(case: Case) -> int:
        out.seek(0)
        return messages._stream_base64(attachment(case), out)

    plan = best(
        lambda: cpu_ms_each(lambda c: messages.reference_plan(*c), built),
        lambda: cpu_ms_each(lambda c: messages._plan(*c), built),
    )
    text = best(
        lambda: cpu_ms_each(text_before, built),
        lambda: cpu_ms_each(lambda c: mimeparts.text_part(c[0].body, c[2]), built),
    )
    head = best(lambda: cpu_ms_each(head_before, built), lambda: cpu_ms_each(head_after, built))
    base64 = best(
        lambda: cpu_ms_each(base64_before, built), lambda: cpu_ms_each(base64_after, built)
    )
    headers = tuple(p - t - h for p, t, h in zip(plan, text, head, strict=True))
    return [
        ("top headers and checks", *headers),
        ("text part", *text),
        ("attachment head", *head),
        ("base64 of 80 KB", *base64),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="messages (default 2000)")
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory() as folder:
        pdfs = []
        for number in range(1, count + 1):
            pdf = Path(folder) / f"Fattura_{number}_2026_C{number % CUSTOMERS:03d}.pdf"
            pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(80 * 1024 - 9))
            pdfs.append(pdf)
        print(f"{count:,} messages of 80 KB, {CUSTOMERS} customers; CPU ms per message")
        print(f"{'scenario':<28} {'before':>8} {'after':>8} {'ratio':>7}")
        for name, (subject, body) in SCENARIOS.items():
            built = cases(pdfs, subject, body)
            same_bytes(built)
            ms_before, ms_after = best(
                lambda built=built: whole(build_before, built),
                lambda built=built: whole(build_after, built),
            )
            print(f"{name:<28} {ms_before:>8.3f} {ms_after:>8.3f} {ms_before / ms_after:>6.1f}×")
        print(f"\nper part, scenario {next(iter(SCENARIOS))!r}")
        print(f"{'part':<28} {'before':>8} {'after':>8} {'ratio':>7}")
        for part, before, after in parts(cases(pdfs, *next(iter(SCENARIOS.values())))):
            ratio = f"{before / after:>6.1f}×" if after > 0.0005 else "     -"
            print(f"{part:<28} {before:>8.3f} {after:>8.3f} {ratio}")


if __name__ == "__main__":
    main()
