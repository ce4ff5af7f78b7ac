"""Reading received mail: Message-IDs and headers normalised, an embedded message never taken
for parts of its carrier, and hostile mail turned into a reason by every parser."""

from __future__ import annotations

import base64
from email.parser import BytesHeaderParser
from email.policy import compat32

import pytest

from invoice_mailer.receipts.bounces import parse_bounce
from invoice_mailer.receipts.mail import (
    Unrecognised,
    body_parts,
    embedded_message,
    filename,
    header,
    message_id,
    read_headers,
    read_message,
)
from invoice_mailer.receipts.pec import parse_receipt
from invoice_mailer.receipts.sdi import parse_sdi_mail
from tests.support.receiptmail import our_message, pec_receipt, transport_envelope

PARSERS = [parse_receipt, parse_bounce, parse_sdi_mail]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@pec.example.it>", "<abc@pec.example.it>"),
        ("  <abc@pec.example.it> (comment)", "<abc@pec.example.it>"),
        ("abc@pec.example.it", "<abc@pec.example.it>"),  # daticert msgid without brackets
        ("not an id", None),
        ("", None),
        (None, None),
    ],
)
def test_message_ids(value, expected):
    assert message_id(value) == expected


def test_headers_are_decoded_and_unfolded():
    message = read_message(
        b"Subject: =?iso-8859-1?Q?CONSEGNA:_Fattura_n=B0_201?=\r\n"
        b"X-Riferimento-Message-ID:\r\n <abc@pec.example.it>\r\n\r\nbody\r\n"
    )
    assert header(message, "Subject") == "CONSEGNA: Fattura n° 201"
    assert header(message, "X-Riferimento-Message-ID") == "<abc@pec.example.it>"
    assert header(message, "X-Ricevuta") is None


_CONSEGNA = pec_receipt(
    "avvenuta-consegna",
    "<a@b.it>",
    recipient="cliente@pec.bianchi.it",
    original=our_message("<a@b.it>", "cliente@pec.bianchi.it"),
)
HEADER_BLOCKS = {
    "a delivery receipt carrying our message": _CONSEGNA,
    "LF line ends": _CONSEGNA.replace(b"\r\n", b"\n"),
    "CR line ends": _CONSEGNA.replace(b"\r\n", b"\r"),
    "a blank line of CRLF after a LF": b"Subject: a\nX-Ricevuta: accettazione\n\r\nFrom: b@c.it\n",
    "a CR before the CRLF blank line": b"Subject: a\r\r\nFrom: b@c.it\r\n\r\nX-A: body\r\n",
    "folded, then a header-like body": b"Subject: a\r\n b\r\n\r\nX-Ricevuta: forged\r\n",
    "a non-header line first": b"Subject: a\r\nnot a header\r\nX-Ricevuta: x\r\n\r\nbody\r\n",
    "no body": b"X-Ricevuta: avvenuta-consegna\r\nContent-Type: multipart/signed",
    "an empty first line": b"\r\nX-Ricevuta: accettazione\r\n\r\n",
    "empty": b"",
}


@pytest.mark.parametrize("data", HEADER_BLOCKS.values(), ids=HEADER_BLOCKS.keys())
def test_the_header_block_alone_gives_the_headers_of_the_whole_message(data):
    whole = BytesHeaderParser(policy=compat32).parsebytes(data)
    head = read_headers(data)
    assert head.items() == whole.items()
    assert head.get_content_type() == whole.get_content_type()


def test_the_parts_of_an_embedded_message_are_not_the_carriers():
    receipt = pec_receipt("accettazione", "<a@b.it>")
    envelope = read_message(transport_envelope(receipt))
    names = [filename(part) for part in body_parts(envelope)]
    assert names.count("daticert.xml") == 1  # the envelope's own, not the receipt's inside
    assert "postacert.eml" in names


def test_a_base64_encoded_embedded_message_is_decoded():
    inner = our_message("<a@b.it>", "c@d.it")
    data = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    (part,) = body_parts(read_message(data))
    carried = embedded_message(part)
    assert carried is not None and header(carried, "Message-ID") == "<a@b.it>"


def _nested(depth: int) -> bytes:
    head = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    return head + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
        for i in range(1, depth)
    )


def _many_parts(count: int) -> bytes:
    part = b'--b\r\nContent-Disposition: attachment; filename="x_NS_1.xml"\r\n\r\n<a/>\r\n'
    return b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * count + b"--b--\r\n"


HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)) * 40,
    "nested 3000 deep": b"X-Ricevuta: accettazione\r\nX-Trasporto: errore\r\n" + _nested(3000),
    "3000 parts": _many_parts(3000),
    "a 1 MB header": b"Subject: " + b"x" * 1_000_000 + b"\r\n\r\n",
    "no body": b"X-Ricevuta: avvenuta-consegna\r\nContent-Type: multipart/signed",
}


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_mail_gives_a_reason_to_every_parser(parser, data):
    result = parser(data)
    assert isinstance(result, Unrecognised)
    assert result.reason


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_ordinary_mail_is_none_of_them(parser):
    assert isinstance(parser(our_message("<a@b.it>", "c@d.it")), Unrecognised)
