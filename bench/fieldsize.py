"""Message building against the length of a document field (issue 13.5): the time to write a
whole message whose Subject and body carry a field of 1k, 10k, 100k and 400k characters, and
the Subject header's size on the wire (all its folded lines). Linear: flat time per character.

    .venv/bin/python bench/fieldsize.py
"""

from __future__ import annotations

import datetime
import io
import tempfile
import time
from pathlib import Path

from invoice_mailer.delivery import messages

SIZES = (1_000, 10_000, 100_000, 400_000)
SHAPES = {"one word": "A", "accented": "è", "short words": "ab "}


def build_once(field: str, pdf: Path) -> tuple[float, int, int]:
    envelope = messages.Envelope(
        "fatture@example.it", "Rossi S.r.l.", ("mario@rossi.example",),
        f"Fattura n. {field} del 01/01/2026", f"Gentile cliente, in allegato la fattura {field}",
        "<bench@example.it>", datetime.datetime.now(datetime.UTC),
    )  # fmt: skip
    out = io.BytesIO()
    started = time.perf_counter()
    messages.write_message(envelope, [messages.Attachment(pdf, "a.pdf", "pdf")], "", out)
    elapsed = time.perf_counter() - started
    head = out.getvalue().split(b"\r\n\r\n", 1)[0]
    start = head.index(b"\r\nSubject:")
    end = head.find(b"\r\n", start + 2)
    while end != -1 and head[end + 2 : end + 3] in (b" ", b"\t"):  # folded continuation lines
        end = head.find(b"\r\n", end + 2)
    return elapsed, len(out.getvalue()), len(head[start + 2 : None if end == -1 else end])


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "a.pdf"
        pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
        print(f"{'shape':<12} {'chars':>8} {'ms':>8} {'µs/char':>8} {'message':>9} {'subject':>8}")
        for shape, unit in SHAPES.items():
            for size in SIZES:
                field = (unit * size)[:size]
                elapsed, total, subject = build_once(field, pdf)
                print(
                    f"{shape:<12} {size:>8} {elapsed * 1000:>8.1f} {elapsed / size * 1e6:>8.3f} "
                    f"{total:>9} {subject:>8}"
                )


if __name__ == "__main__":
    main()
