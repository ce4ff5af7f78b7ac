"""The message as the recipient's mail program reads it: parsed back with the stdlib."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from datetime import datetime, timedelta, timezone
from email import message_from_binary_file, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from invoice_mailer.addresses import new_message_id
from invoice_mailer.delivery.messages import (
    CHUNK,
    Attachment,
    Envelope,
    estimated_size,
    message_size,
    write_message,
)
from invoice_mailer.delivery.messagetext import compose_text, header_text, render, safe_filename
from invoice_mailer.errors import InvoiceMailerError

SENDER = "fatture@pec.example.it"
ROME = timezone(timedelta(hours=1))
SIGNATURE = "--\nRossi S.r.l. - Amministrazione\n"
EVIL = "\r\nBcc: x@evil.test"


def envelope(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "sender": SENDER,
        "sender_name": "Rossi S.r.l.",
        "to": ("mario@pec.bianchi.it",),
        "cc": ("archivio@example.it",),
        "subject": "Fattura n. 123 del 02/03/2026",
        "body": "Gentile Bianchi S.p.A.,\nin allegato Fattura n. 123 del 02/03/2026.\n",
        "message_id": new_message_id(SENDER),
        "date": datetime(2026, 3, 2, 9, 30, tzinfo=ROME),
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


def document(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "spool" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def build(
    tmp_path: Path, env: Envelope, attachments: list[Attachment], signature: str = SIGNATURE
) -> tuple[bytes, EmailMessage]:
    """Write the message to a real file, check its announced size, and parse it back."""
    eml = tmp_path / "out.eml"
    with eml.open("wb") as out:
        written = write_message(env, attachments, signature, out)
    raw = eml.read_bytes()
    assert written == len(raw) == message_size(env, attachments, signature)
    with eml.open("rb") as source:
        parsed = message_from_binary_file(source, policy=policy.default)
    return raw, parsed  # type: ignore[return-value]


@pytest.fixture
def invoice_files(tmp_path: Path) -> list[Attachment]:
    pdf = document(tmp_path, "Fattura_123_2026_C042.pdf", b"%PDF-1.7\n" + os.urandom(5000))
    xml = document(tmp_path, "IT01234567890_0000A.xml", b'<?xml version="1.0"?><p:F/>\n')
    p7m = document(tmp_path, "IT01234567890_0000B.xml.p7m", b"0\x82" + os.urandom(3000))
    return [
        Attachment(pdf, pdf.name, "pdf"),
        Attachment(xml, xml.name, "xml"),
        Attachment(p7m, p7m.name, "p7m"),
    ]


def test_the_recipient_reads_headers_body_and_every_document(tmp_path, invoice_files):
    fields = {"doc": "Fattura", "number": 123, "date": "02/03/2026"}
    env = envelope(subject=render("{doc} n. {number} del {date}", fields), bcc=("ombra@x.it",))
    raw, msg = build(tmp_path, env, invoice_files)

    assert msg["From"] == '"Rossi S.r.l." <fatture@pec.example.it>'
    assert msg["To"] == "mario@pec.bianchi.it"
    assert msg["Cc"] == "archivio@example.it"
    assert msg["Bcc"] is None and b"ombra@x.it" not in raw
    assert msg["Subject"] == "Fattura n. 123 del 02/03/2026"
    assert msg["Date"].datetime == env.date
    assert msg["Message-ID"] == env.message_id
    assert msg["MIME-Version"] == "1.0" and msg["X-Mailer"] == "invoice-mailer"
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("plain",)).get_content() == (
        "Gentile Bianchi S.p.A.,\nin allegato Fattura n. 123 del 02/03/2026.\n\n"
        "-- \nRossi S.r.l. - Amministrazione\n"
    )
    received = [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in msg.iter_attachments()
    ]
    assert received == [
        (a.filename, mime, a.path.read_bytes())
        for a, mime in zip(
            invoice_files,
            ["application/pdf", "application/xml", "application/pkcs7-mime"],
            strict=True,
        )
    ]
    assert env.recipients == ("mario@pec.bianchi.it", "archivio@example.it", "ombra@x.it")


def test_without_attachments_the_message_is_one_text_part(tmp_path):
    _raw, msg = build(tmp_path, envelope(cc=()), [], signature="")
    assert msg.get_content_type() == "text/plain"
    assert not msg.is_multipart() and msg["Cc"] is None
    assert msg.get_content() == envelope().body


def test_non_ascii_names_and_subject_are_encoded_and_round_trip(tmp_path):
    path = document(tmp_path, "f.pdf", b"%PDF-1.4 ok\n")
    env = envelope(
        sender_name="Società Cooperativa Però",
        subject="Fattura n. 7 – Società",
        body="Gentile Società Però,\nè allegata la fattura.\n",
    )
    raw, msg = build(tmp_path, env, [Attachment(path, "Fattura_Società_1.pdf", "pdf")])
    assert raw.isascii()  # RFC 2047 / 2231 / base64: no 8-bit byte on the wire
    assert msg["From"].addresses[0].display_name == "Società Cooperativa Però"
    assert msg["Subject"] == "Fattura n. 7 – Società"
    assert msg.get_body(("plain",)).get_content().startswith("Gentile Società Però,\nè allegata")
    (part,) = msg.iter_attachments()
    assert part.get_filename() == "Fattura_Società_1.pdf"
    assert part.get_content() == b"%PDF-1.4 ok\n"


def test_a_slash_in_the_invoice_number_is_not_a_path(tmp_path):
    path = document(tmp_path, "f.pdf", b"%PDF-1.4\n")
    _raw, msg = build(tmp_path, envelope(), [Attachment(path, "Fattura_12/2026\\B.pdf", "pdf")])
    (part,) = msg.iter_attachments()
    assert part.get_filename() == "Fattura_12-2026-B.pdf"


def test_header_injection_stays_one_line_of_text(tmp_path, invoice_files):
    env = envelope(subject="Fattura 1" + EVIL, sender_name="Rossi" + EVIL)
    raw, msg = build(tmp_path, env, invoice_files)
    assert msg.get_all("Subject") == ["Fattura 1 Bcc: x@evil.test"]
    assert msg["Bcc"] is None
    headers = raw.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert not any(line.lower().startswith(b"bcc") for line in headers)
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Rossi Bcc: x@evil.test", SENDER)
    assert "x@evil.test" not in envelope(subject=env.subject).recipients


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-address",
        "mario@",
        "@pec.bianchi.it",
        "mario rossi@bianchi.it",
        "a@b.it, c@d.it",
        "mario@bianchi.it" + EVIL,
        "mario@" + "ü" * 64 + ".it",  # no IDNA form: a label over 63 characters
        "",
    ],
)
@pytest.mark.parametrize("where", ["sender", "to", "cc", "bcc"])
def test_a_bad_address_raises_before_anything_is_written(tmp_path, bad, where):
    env = envelope(**{where: bad if where == "sender" else (bad,)})
    out = tmp_path / "out.eml"
    with out.open("wb") as stream, pytest.raises(InvoiceMailerError, match="e-mail address"):
        write_message(env, [], SIGNATURE, stream)
    assert out.stat().st_size == 0
    with pytest.raises(InvoiceMailerError):
        message_size(env, [], SIGNATURE)


def test_a_non_ascii_domain_is_written_in_its_ascii_idna_form(tmp_path):
    env = envelope(to=("mario@perché.it",), cc=("archivio@società.example",))
    raw, msg = build(tmp_path, env, [])
    headers = raw.partition(b"\r\n\r\n")[0]
    assert headers.isascii()
    assert msg["To"] == "mario@xn--perch-fsa.it"
    assert msg["Cc"] == "archivio@xn--societ-nta.example"


def test_a_non_ascii_name_before_the_at_is_written_as_utf8(tmp_path):
    env = envelope(to=("màrio@perché.it",), cc=("archivio@example.it",))
    raw, msg = build(tmp_path, env, [])
    headers = raw.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert b"To: m\xc3\xa0rio@xn--perch-fsa.it" in headers  # RFC 6532, for SMTPUTF8
    assert [line for line in headers if not line.isascii()] == [
        b"To: m\xc3\xa0rio@xn--perch-fsa.it"
    ]
    assert msg["Cc"] == "archivio@example.it"


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"date": datetime(2026, 3, 2, 9, 30)}, "time zone"),  # naive: the point
        ({"message_id": "<no-domain>"}, "Message-ID"),
        ({"message_id": "<a@b>\r\nBcc: x@evil.test"}, "Message-ID"),
        ({"to": ()}, "no To address"),
    ],
)
def test_an_unusable_envelope_is_refused(tmp_path, changes, words):
    with (tmp_path / "out.eml").open("wb") as out, pytest.raises(InvoiceMailerError, match=words):
        write_message(envelope(**changes), [], "", out)


def test_a_missing_attachment_is_named(tmp_path):
    gone = Attachment(tmp_path / "Fattura_9_2026_C1.pdf", "Fattura_9_2026_C1.pdf", "pdf")
    with pytest.raises(InvoiceMailerError, match=r"Fattura_9_2026_C1\.pdf"):
        message_size(envelope(), [gone], "")
    with (tmp_path / "out.eml").open("wb") as out, pytest.raises(InvoiceMailerError, match="read"):
        write_message(envelope(), [gone], "", out)


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(InvoiceMailerError, match="pdf, xml, p7m"):
        Attachment(tmp_path / "a.doc", "a.doc", "doc")


@pytest.mark.parametrize("size", [0, 1, 2, 56, 57, 58, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_attachments_of_any_size_arrive_intact_on_76_character_lines(tmp_path, size):
    data = os.urandom(size)
    path = document(tmp_path, "f.pdf", data)
    raw, msg = build(tmp_path, envelope(), [Attachment(path, "f.pdf", "pdf")])
    (part,) = msg.iter_attachments()
    assert part.get_content() == data
    assert base64.encodebytes(data).replace(b"\n", b"\r\n") in raw


def test_every_line_ends_with_crlf_and_stays_under_998_characters(tmp_path):
    path = document(tmp_path, "f.xml.p7m", os.urandom(200_000))
    env = envelope(
        subject="Fattura àèìòù " * 60,
        sender_name="Società " * 40,
        cc=tuple(f"copia{i}@example.it" for i in range(40)),
        body="Riga lunghissima senza a capo. " * 200 + "\n.\nFine\n",
    )
    long_name = "Fattura_Società_" * 30 + ".xml.p7m"
    raw, msg = build(tmp_path, env, [Attachment(path, long_name, "p7m")])
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    assert len(msg["Cc"].addresses) == 40
    (part,) = msg.iter_attachments()
    assert part.get_filename().endswith(".xml.p7m") and len(part.get_filename()) == 200


def test_the_boundary_is_random_and_never_in_the_text(tmp_path):
    path = document(tmp_path, "f.pdf", b"%PDF")
    env = envelope(body="--=_ looks like a boundary\n--\n")
    first, _ = build(tmp_path, env, [Attachment(path, "f.pdf", "pdf")])
    second, msg = build(tmp_path, env, [Attachment(path, "f.pdf", "pdf")])
    assert first != second and len(first) == len(second)
    boundary = msg.get_boundary()
    assert boundary and boundary.encode() not in msg.get_body(("plain",)).get_content().encode()


def test_a_30_mb_document_is_streamed_not_held_in_memory(tmp_path):
    size = 30 * 1024 * 1024
    path = tmp_path / "Fattura_big.pdf"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    attachments = [Attachment(path, path.name, "pdf")]
    eml = tmp_path / "big.eml"
    tracemalloc.start()
    try:
        with eml.open("wb") as out:
            written = write_message(envelope(), attachments, SIGNATURE, out)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 20, f"peak {peak} bytes while writing a {size}-byte document"
    assert written == eml.stat().st_size == message_size(envelope(), attachments, SIGNATURE)
    # The attachment, decoded back from the file as written, is the document.
    rest = eml.read_bytes().partition(b"Content-Disposition: attachment;")[2]
    body = rest.partition(b"\r\n\r\n")[2].partition(b"\r\n\r\n--")[0]
    assert hashlib.sha256(base64.b64decode(body)).digest() == digest.digest()


@pytest.mark.parametrize(
    "sizes",
    [[0], [1], [57], [CHUNK + 1], [100_000, 3, 77], [2_000_000], [10] * 50],
)
def test_estimated_size_is_never_below_the_real_size(tmp_path, sizes):
    worst_name = "Fattura_Società_€_" * 12 + ".xml.p7m"  # 200 characters once made safe
    attachments = [
        Attachment(document(tmp_path, f"{i}.bin", os.urandom(n)), worst_name, "p7m")
        for i, n in enumerate(sizes)
    ]
    env = envelope(body="Documenti emessi:\n" + "Fattura_123_2026_C042.pdf\n" * 50)
    real = message_size(env, attachments, SIGNATURE)
    assert real <= estimated_size(sizes) <= real + 100_000 + 5000 * len(sizes)


def test_safe_filename_keeps_what_the_recipient_should_see():
    assert safe_filename("Fattura_12/2026_C042.pdf") == "Fattura_12-2026_C042.pdf"
    assert safe_filename("..\\..\\etc\\passwd") == "-..-etc-passwd"
    assert safe_filename(" Fattura\r\n1\x00\t.pdf ") == "Fattura 1 .pdf"
    assert safe_filename("Fattura\u202efdp.exe") == "Fatturafdp.exe"
    assert safe_filename('a:b*c?"d".pdf') == "a_b_c__d_.pdf"
    assert safe_filename("\r\n\t ") == safe_filename("") == "documento"
    assert safe_filename("x" * 300 + ".pdf") == "x" * 196 + ".pdf"
    assert safe_filename("x" * 300 + ".xml.p7m") == "x" * 192 + ".xml.p7m"
    assert safe_filename("Fattura_Societ\udce0.pdf") == "Fattura_Societ_.pdf"
    assert safe_filename("Fattura_Società_1.pdf") == "Fattura_Società_1.pdf"


def test_header_text_is_always_one_line():
    assert header_text("  Fattura\r\n\tn. 1\u2028del\x00oggi \n") == "Fattura n. 1 del oggi"
    assert header_text(12) == "12"  # type: ignore[arg-type]


def test_the_signature_follows_one_blank_line():
    assert compose_text("Corpo\n\n\n", "-- \nFirma\n") == "Corpo\n\n-- \nFirma\n"
    assert compose_text("Corpo", "Firma") == "Corpo\n\nFirma\n"
    assert compose_text("Corpo\r\nriga\r\n", "") == "Corpo\nriga\n"
    assert compose_text("Corpo\n\n", "  \n") == "Corpo\n\n"
    assert compose_text("Vecchio\rMac\x00\x1b[31m", "") == "Vecchio\nMac[31m\n"


def test_a_signature_separator_stripped_of_its_space_gets_it_back():
    """RFC 3676: mail programs recognise "-- " only with the space editors like to strip."""
    assert compose_text("Corpo", "--\nFirma") == "Corpo\n\n-- \nFirma\n"
    assert compose_text("Corpo", "\n--\t\nFirma") == "Corpo\n\n-- \nFirma\n"
    assert compose_text("Corpo", "--") == "Corpo\n\n-- \n"
    assert compose_text("Corpo", "---\nFirma") == "Corpo\n\n---\nFirma\n"  # not a separator


def test_render_fills_fields_and_names_a_wrong_one():
    assert render("{doc} n. {number}", {"doc": "Fattura", "number": 12}) == "Fattura n. 12"
    with pytest.raises(InvoiceMailerError, match=r"unknown field \{numero\}"):
        render("{doc} n. {numero}", {"doc": "Fattura"})
    with pytest.raises(InvoiceMailerError, match="cannot be used"):
        render("{doc.__class__}", {"doc": "Fattura"})


def test_render_keeps_a_reasonable_width_and_refuses_a_huge_one():
    assert render("n. {number:>6}", {"number": 12}) == "n.     12"
    with pytest.raises(InvoiceMailerError, match="a width over 100 characters"):
        render("{doc:>999999999}", {"doc": "Fattura"})  # would be a gigabyte of spaces
    with pytest.raises(InvoiceMailerError, match="a field inside the format spec"):
        render("{doc:{number}}", {"doc": "Fattura", "number": "999999999"})


def test_message_ids_are_unique_in_the_sender_domain():
    ids = {new_message_id(SENDER) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("<") and i.endswith("@pec.example.it>") for i in ids)
    with pytest.raises(InvoiceMailerError):
        new_message_id("fatture")


def test_recipients_name_each_address_once():
    env = envelope(to=("a@x.it",), cc=("b@x.it", "A@x.it"), bcc=("b@x.it", "c@x.it"))
    assert env.recipients == ("a@x.it", "b@x.it", "c@x.it")
