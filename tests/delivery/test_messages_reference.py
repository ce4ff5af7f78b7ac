"""The message write_message puts in the file (what is sent and archived) is, byte for byte,
the message built entirely by the stdlib email package (messages.reference_plan), with the
attachments in base64.encodebytes' 76-character lines: over a seeded random corpus of
envelopes, signatures and attachments, and the same refusal where the envelope is unusable."""

from __future__ import annotations

import base64
import os
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from invoice_mailer.addresses import new_message_id
from invoice_mailer.delivery.messages import (
    CHUNK,
    Attachment,
    Envelope,
    Plan,
    message_size,
    reference_plan,
    write_message,
)
from invoice_mailer.errors import InvoiceMailerError

EVIL = "\r\nBcc: x@evil.test"
SENDERS = ["fatture@pec.example.it", "fàtture@example.it", "fatture@società.example"]
NAMES = [
    "Rossi S.r.l.",
    "Società Cooperativa Però",
    'Mario "Il Grande" Rossi',
    "Rossi, Bianchi & C. (Milano)",
    "",
    "Studio " * 20,
    "Rossi" + EVIL,
    "=?utf-8?q?evil?=",
    "a\\b",
    "日本語の会社",
]
ADDRESSES = [
    "mario@pec.bianchi.it",
    "amministrazione@bianchi.it",
    "o'brien+fatture@example.ie",
    "first.last@sub.example.com",
    "màrio@perché.it",
    "mario@perché.it",
    '"q"@example.it',
    "x" * 60 + "@example.it",
]
SUBJECTS = [
    "Fattura n. 123 del 02/03/2026",
    "Fattura n. 123 del 02/03/2026 – è",
    "Nota di credito n. 7 del 31/12/2026 (storno)",
    "Fattura " * 12,
    "Fattura àèìòù " * 20,
    '"Fattura" <1>, [2]; a:b',
    "",
    "  spazi  doppi\tinterni  ",
    "=?utf-8?q?x?= Fattura",
    "Fattura 1" + EVIL,
    "x" * 69,
    "x" * 70,
    "€" * 250,
]
BODIES = [
    "Gentile cliente,\nin allegato la fattura.\n",
    "Gentile Società Però,\nè allegata Fattura n. 123 del 02/03/2026.\n",
    "Riga lunghissima senza a capo. " * 20 + "\n.\nFrom here\n",
    "",
    "Vecchio\r\nWindows\rMac\x00\n",
]
SIGNATURES = ["--\nRossi S.r.l. - Amministrazione\n", "", "-- \nSocietà\n"]
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-3, minutes=-30))]
ZONES.append(timezone(timedelta(hours=5, minutes=45, seconds=30)))
FILES = {  # name on disk: size
    "Fattura_123_2026_C042.pdf": 80 * 1024,
    "IT01234567890_FPR12345.xml": 3000,
    "IT01234567890_FPR12345.xml.p7m": CHUNK + 1,
    "empty.pdf": 0,
    "one.pdf": 1,
}
SHOWN_NAMES = [
    None,  # the name on disk
    "Fattura_Società_1.pdf",
    'Fattura 1 (copia) "x" ; a=b.pdf',
    "Fattura_" * 30 + ".xml.p7m",
    "Fattura_12/2026\\B.pdf",
    "a=?b.pdf",
    "\u202efdp.exe",
]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("spool")
    rng = random.Random(8)
    paths = []
    for name, size in FILES.items():
        path = folder / name
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
    return paths


def random_message(
    rng: random.Random, documents: list[Path]
) -> tuple[Envelope, list[Attachment], str]:
    sender = rng.choice(SENDERS)
    envelope = Envelope(
        sender=sender,
        sender_name=rng.choice(NAMES),
        to=tuple(rng.sample(ADDRESSES, rng.choice([1, 1, 1, 2, 3]))),
        cc=tuple(rng.sample(ADDRESSES, rng.choice([0, 0, 1, 2, 6]))),
        bcc=tuple(rng.sample(ADDRESSES, rng.choice([0, 0, 1]))),
        subject=rng.choice(SUBJECTS),
        body=rng.choice(BODIES),
        message_id=new_message_id(sender),
        date=datetime(2026, 3, 2, 9, 30, rng.randint(0, 59), tzinfo=rng.choice(ZONES)),
    )
    attachments = []
    for path in rng.sample(documents, rng.choice([0, 1, 1, 1, 2, 3])):
        shown = rng.choice(SHOWN_NAMES) or path.name
        kind = path.name.rpartition(".")[2]
        attachments.append(Attachment(path, shown, kind))
    return envelope, attachments, rng.choice(SIGNATURES)


def rendered(plan: Plan) -> bytes:
    """The plan's message, each attachment as the stdlib's base64.encodebytes writes it."""
    return b"".join(
        base64.encodebytes(piece.path.read_bytes()).replace(b"\n", b"\r\n")
        if isinstance(piece, Attachment)
        else piece
        for piece in plan
    )


def once(boundary: str) -> Callable[[int], str]:
    """The token the written message's boundary was made of; a second draw is a failure."""
    tokens = iter([boundary.removeprefix("=_")])
    return lambda _bytes: next(tokens)


def test_every_message_is_the_stdlibs_byte_for_byte(tmp_path, documents):
    rng = random.Random(9)
    eml = tmp_path / "out.eml"
    for _ in range(400):
        envelope, attachments, signature = random_message(rng, documents)
        with eml.open("wb") as out:
            written = write_message(envelope, attachments, signature, out)
        raw = eml.read_bytes()
        assert written == len(raw) == message_size(envelope, attachments, signature)
        found = re.search(rb'boundary="(=_[0-9a-f]{32})"', raw)
        assert (found is not None) == bool(attachments)
        token = once(found.group(1).decode() if found else "")
        expected = rendered(reference_plan(envelope, attachments, signature, token))
        assert raw == expected, (envelope, attachments, signature)


@pytest.mark.parametrize(
    "changes",
    [
        {"sender": "fatture"},
        {"to": ("mario@bianchi.it" + EVIL,)},
        {"cc": ("a@b.it, c@d.it",)},
        {"bcc": ("mario rossi@bianchi.it",)},
        {"to": ()},
        {"date": datetime(2026, 3, 2, 9, 30)},  # naive: the point
        {"message_id": "<a@b>\r\nBcc: x@evil.test"},
        {"message_id": "<no-domain>"},
    ],
)
def test_an_unusable_envelope_is_refused_with_the_same_words(tmp_path, documents, changes):
    envelope, attachments, signature = random_message(random.Random(10), documents)
    envelope = Envelope(**{**envelope.__dict__, **changes})
    with pytest.raises(InvoiceMailerError) as refused:
        reference_plan(envelope, attachments, signature)
    with (tmp_path / "out.eml").open("wb") as out, pytest.raises(InvoiceMailerError) as fast:
        write_message(envelope, attachments, signature, out)
    assert str(fast.value) == str(refused.value)
    assert (tmp_path / "out.eml").stat().st_size == 0


def test_the_base64_lines_are_the_stdlibs_at_every_chunk_edge(tmp_path):
    for size in [1, 2, 3, 56, 57, 58, 75, 76, 77, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 57]:
        path = tmp_path / f"{size}.pdf"
        path.write_bytes(os.urandom(size))
        envelope = Envelope("f@x.it", "F", ("a@x.it",), "s", "b", "<1@x.it>", datetime.now(UTC))
        with (tmp_path / "out.eml").open("wb") as out:
            write_message(envelope, [Attachment(path, "f.pdf", "pdf")], "", out)
        encoded = base64.encodebytes(path.read_bytes()).replace(b"\n", b"\r\n")
        assert encoded in (tmp_path / "out.eml").read_bytes(), size
