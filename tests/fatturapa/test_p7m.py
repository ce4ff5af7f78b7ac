"""p7m envelopes made with cryptography, in every form signing tools write, open to their XML."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from invoice_mailer.demo.pecreceipts import sign_detached
from invoice_mailer.demo.samples import make_fattura_xml
from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa import p7m
from tests.support.fatturapa_samples import P7M_FORMS, make_p7m, sample_bytes, signing_identity

XML = sample_bytes("IT01234567890_FPR01.xml")


@pytest.mark.parametrize("form", P7M_FORMS)
def test_every_form_gives_back_the_signed_xml(form: str) -> None:
    assert p7m.unwrap(make_p7m(XML, form)) == XML


@pytest.mark.parametrize("form", ["base64", "base64x2"])
def test_base64_without_line_breaks(form: str) -> None:
    assert p7m.unwrap(make_p7m(XML, form, line_breaks=False)) == XML


def test_base64_surrounded_by_blank_lines_and_without_padding() -> None:
    text = make_p7m(XML, "base64", line_breaks=False).rstrip(b"=")
    assert p7m.unwrap(b"\r\n  " + text + b"\r\n\r\n") == XML


def test_der_followed_by_a_newline_still_opens() -> None:
    # Some tools append a newline after the binary envelope.
    assert p7m.unwrap(make_p7m(XML) + b"\n") == XML


def test_cp1252_payload_comes_back_byte_for_byte() -> None:
    xml = make_fattura_xml(customer_name="Caffè Società", encoding="cp1252")
    assert p7m.unwrap(make_p7m(xml, "pem")) == xml


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"   \r\n", "the file is empty"),
        (b"hello, this is not an envelope!", "neither DER, base64 nor PEM"),
        (b"\x00\x01\x02garbage\xff", "neither DER, base64 nor PEM"),
        (b"0\x82\x10\x00" + b"\x00" * 20, "damaged or truncated"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "without a PKCS7 or CMS block",
        ),
        (b"-----BEGIN PKCS7-----\n!!!notbase64!!!\n-----END PKCS7-----\n", "not valid base64"),
    ],
)
def test_what_is_not_an_envelope_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=r"^not a signed p7m envelope: ") as caught:
        p7m.unwrap(data)
    assert reason in str(caught.value)


@pytest.mark.parametrize("form", ["der", "base64", "pem"])
def test_truncated_envelope_is_refused(form: str) -> None:
    whole = make_p7m(XML, form)
    with pytest.raises(DocumentError, match=r"^not a signed p7m envelope: "):
        p7m.unwrap(whole[: len(whole) // 2])


def test_three_layers_of_base64_are_too_many() -> None:
    triple = base64.b64encode(make_p7m(XML, "base64x2", line_breaks=False))
    with pytest.raises(DocumentError, match="too many layers of base64"):
        p7m.unwrap(triple)


def test_detached_signature_carries_no_document() -> None:
    detached = sign_detached(XML, *signing_identity())
    with pytest.raises(DocumentError, match="carries no document"):
        p7m.unwrap(detached)


def test_a_certificate_is_not_a_signed_envelope() -> None:
    cert, _ = signing_identity()
    with pytest.raises(DocumentError, match=r"^not a signed p7m envelope: "):
        p7m.unwrap(cert.public_bytes(serialization.Encoding.DER))


def test_size_limit_is_enforced_before_any_decoding() -> None:
    envelope = make_p7m(XML)
    assert p7m.unwrap(envelope, max_size=len(envelope)) == XML
    with pytest.raises(DocumentError, match="p7m envelope too large"):
        p7m.unwrap(envelope, max_size=len(envelope) - 1)
