"""Reasons that reach a message are Italian: every reason the intake check really gives has a
translation, and none comes through in English."""

from __future__ import annotations

import io

import pytest

from invoice_mailer.bundles import italian
from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.errors import DocumentError
from invoice_mailer.intake import taking
from tests.support.fatturapa_samples import make_p7m
from tests.support.hostile import BILLION_LAUGHS, XXE

UNTRANSLATED = italian.reason("something nobody translated")
ENGLISH = ("not ", " the ", "file is", "does ", "refused", "envelope", "looked up", "customer")

BROKEN = [
    ("pdf", b""),
    ("pdf", b"PK\x03\x04 a zip file named .pdf"),
    ("pdf", make_pdf()[:-200]),
    ("xml", b"   "),
    ("xml", b"<a><b></a>"),
    ("xml", BILLION_LAUGHS),
    ("xml", XXE),
    ("p7m", b"neither der nor base64 !!"),
    ("p7m", make_p7m(b"<a><b></a>")),
    ("p7m", make_p7m(make_fattura_xml())[:100]),
]

OVERSIZE = [("pdf", make_pdf(size=5000), 4000)]


@pytest.mark.parametrize(("kind", "data", "limit"), [(*b, 10**6) for b in BROKEN] + OVERSIZE)
def test_every_reason_the_intake_gives_reads_in_italian(kind, data, limit):
    with pytest.raises(DocumentError) as refused:
        taking.check(kind, io.BytesIO(data), len(data), limit)
    words = italian.reason(str(refused.value))
    assert words != UNTRANSLATED, str(refused.value)
    assert not any(english in f" {words}" for english in ENGLISH), words


def test_what_routing_looked_up_is_said_in_italian():
    held = "no customer found in the address book (looked up code C999, P.IVA IT01234567890)"
    assert (
        italian.reason(held) == "cliente sconosciuto (cercato per codice C999, P.IVA IT01234567890)"
    )


def test_a_server_reply_is_quoted_and_an_unknown_reason_never_leaks_english():
    assert italian.reason("550 5.1.1 user unknown (RCPT TO mario@x.it); check the address") == (
        "rifiutato dal server di posta: «550 5.1.1 user unknown»"
    )
    assert "timeout" not in italian.reason("connect to 10.0.0.1:465: timeout")
