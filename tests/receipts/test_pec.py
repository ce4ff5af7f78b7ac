"""PEC receipts: every kind the rules define is read from mail shaped like the providers', and
anything that merely claims to be a receipt is refused with a reason, never an exception."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from invoice_mailer.receipts.daticert import Addressee
from invoice_mailer.receipts.mail import Unrecognised
from invoice_mailer.receipts.pec import DeliveryForm, PecReceipt, ReceiptKind, parse_receipt
from tests.support.receiptmail import (
    ARUBA,
    LEGALMAIL,
    SENDER,
    WHEN,
    daticert,
    our_message,
    pec_receipt,
    provider_message,
    transport_envelope,
)

OURS = "<5c1e0a9d2f7b4e1c8a3d@pec.studiorossi.it>"
CUSTOMER = "cliente@pec.bianchi.it"


def receipt(data: bytes) -> PecReceipt:
    result = parse_receipt(data)
    assert isinstance(result, PecReceipt), result
    return result


def refused(data: bytes) -> str:
    result = parse_receipt(data)
    assert isinstance(result, Unrecognised), result
    return result.reason


def test_accettazione_names_our_message_every_recipient_and_the_provider_time():
    addressees = {CUSTOMER: True, "amministrazione@bianchi.example": False}
    got = receipt(pec_receipt("accettazione", OURS, addressees=addressees))
    assert got.kind is ReceiptKind.ACCETTAZIONE
    assert got.message_id == OURS
    assert got.recipient is None
    assert got.addressees == (
        Addressee(CUSTOMER, certified=True),
        Addressee("amministrazione@bianchi.example", certified=False),
    )
    assert got.provider_time == WHEN
    assert got.provider_time.utcoffset() == timedelta(hours=1)
    assert got.provider_id.startswith("opec") and got.provider_id.endswith("@pec.aruba.it")
    assert got.provider == "ARUBA PEC S.p.A."
    assert got.sender == SENDER
    assert got.signed_by is not None and "ARUBA PEC" in got.signed_by
    assert got.reason is None


@pytest.mark.parametrize("provider", [ARUBA, LEGALMAIL], ids=["aruba", "legalmail"])
def test_full_delivery_receipt_names_the_one_recipient_and_carries_the_original(provider):
    original = our_message(OURS, CUSTOMER)
    data = pec_receipt(
        "avvenuta-consegna", OURS, provider=provider, recipient=CUSTOMER, original=original
    )
    got = receipt(data)
    assert got.kind is ReceiptKind.AVVENUTA_CONSEGNA
    assert got.recipient == CUSTOMER
    assert got.form is DeliveryForm.COMPLETA
    assert got.carries_original
    assert got.provider == provider.name


@pytest.mark.parametrize("form", ["breve", "sintetica"])
def test_short_and_synthetic_delivery_receipts(form):
    original = our_message(OURS, CUSTOMER)
    got = receipt(
        pec_receipt("avvenuta-consegna", OURS, recipient=CUSTOMER, form=form, original=original)
    )
    assert got.form == form
    assert got.carries_original is (form == "breve")


def test_non_delivery_gives_the_provider_reason():
    got = receipt(
        pec_receipt(
            "errore-consegna",
            OURS,
            provider=LEGALMAIL,
            recipient=CUSTOMER,
            error="no-dest",
            error_detail="5.1.1 - InfoCert S.p.A. - indirizzo non valido",
        )
    )
    assert got.kind is ReceiptKind.ERRORE_CONSEGNA
    assert got.recipient == CUSTOMER
    assert got.error == "no-dest"
    assert got.reason == "5.1.1 - InfoCert S.p.A. - indirizzo non valido"
    assert not got.virus


OTHER_KINDS = [
    "non-accettazione",
    "preavviso-errore-consegna",
    "rilevazione-virus",
    "presa-in-carico",
]


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_the_other_kinds(kind):
    got = receipt(pec_receipt(kind, OURS, recipient=CUSTOMER, error="altro"))
    assert got.kind == kind
    assert got.message_id == OURS
    assert got.reason == "altro"


def test_refusal_for_a_virus_is_marked():
    got = receipt(pec_receipt("non-accettazione", OURS, error="virus", virus=True))
    assert got.virus and got.reason == "virus"


def test_daticert_msgid_without_brackets_still_matches():
    bare = OURS.strip("<>")
    assert receipt(pec_receipt("accettazione", OURS, daticert_message_id=bare)).message_id == OURS


def test_a_receipt_forged_inside_someone_elses_pec_envelope_is_refused():
    forged = pec_receipt("avvenuta-consegna", OURS, recipient=CUSTOMER)
    reason = refused(transport_envelope(forged, sender="truffatore@pec.example.it"))
    assert "PEC envelope" in reason and "truffatore@pec.example.it" in reason


def test_an_unsigned_receipt_is_refused():
    reason = refused(pec_receipt("avvenuta-consegna", OURS, recipient=CUSTOMER, signed=False))
    assert "not S/MIME signed" in reason


def test_header_and_daticert_naming_different_messages_is_refused():
    other = "<ffffffffffffffff@pec.studiorossi.it>"
    reason = refused(pec_receipt("accettazione", OURS, daticert_message_id=other))
    assert "name different messages" in reason


def test_a_kind_that_daticert_contradicts_is_refused():
    certificate = daticert("accettazione", OURS, ARUBA, {CUSTOMER: True})
    headers = {"X-Ricevuta": "avvenuta-consegna", "X-Riferimento-Message-ID": OURS}
    reason = refused(provider_message(ARUBA, "avvenuta-consegna", headers, "x", certificate, None))
    assert "X-Ricevuta says avvenuta-consegna, its daticert.xml says accettazione" in reason


def test_daticert_only_inside_the_embedded_message_does_not_count():
    # A signed message claiming to be a receipt whose only daticert.xml sits in postacert.eml.
    inner = pec_receipt("avvenuta-consegna", OURS, recipient=CUSTOMER)
    headers = {"X-Ricevuta": "avvenuta-consegna", "X-Riferimento-Message-ID": OURS}
    reason = refused(provider_message(ARUBA, "avvenuta-consegna", headers, "x", None, inner))
    assert "no daticert.xml in the message's own body" in reason


def test_ordinary_mail_and_unknown_kinds_are_not_receipts():
    assert "no X-Ricevuta" in refused(our_message(OURS, CUSTOMER))
    headers = {"X-Ricevuta": "consegnata-davvero", "X-Riferimento-Message-ID": OURS}
    certificate = daticert("consegnata-davvero", OURS, ARUBA, {CUSTOMER: True})
    data = provider_message(ARUBA, "avvenuta-consegna", headers, "x", certificate, None)
    assert "no kind the PEC rules define" in refused(data)


def test_daticert_with_entities_is_refused_for_safety():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE postacert [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><postacert tipo="accettazione">'
        b"&b;</postacert>"
    )
    headers = {"X-Ricevuta": "accettazione", "X-Riferimento-Message-ID": OURS}
    reason = refused(provider_message(ARUBA, "accettazione", headers, "x", bomb, None))
    assert "refused for safety" in reason


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\xff" * 50, b"X-Ricevuta: accettazione\r\n\r\n", b"Content-Type: multipart/signed"],
    ids=["empty", "binary", "header only", "broken multipart"],
)
def test_hostile_bytes_give_a_reason(data):
    assert refused(data).startswith("not a PEC receipt")


def test_too_large_is_refused_before_parsing():
    data = pec_receipt("accettazione", OURS)
    assert "too large" in parse_receipt(data, max_size=len(data) - 1).reason  # type: ignore[union-attr]


def test_damaged_receipts_never_raise():
    original = pec_receipt(
        "avvenuta-consegna", OURS, recipient=CUSTOMER, original=our_message(OURS, CUSTOMER)
    )
    chance = random.Random(16)
    for _ in range(300):
        data = bytearray(original)
        for _ in range(chance.randint(1, 40)):
            data[chance.randrange(len(data))] = chance.randrange(256)
        cut = chance.randrange(len(data) + 1)
        result = parse_receipt(bytes(data[:cut]) if chance.random() < 0.3 else bytes(data))
        assert isinstance(result, PecReceipt | Unrecognised)
