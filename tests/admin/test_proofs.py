"""The words `status` uses for proof of delivery, as an Italian office reads them."""

from __future__ import annotations

import time

import pytest

from invoice_mailer.admin.proofs import proof_words, sdi_words

MOMENT = time.mktime((2026, 3, 12, 10, 15, 0, 0, 0, -1))  # local time, as status shows it


@pytest.mark.parametrize(
    ("proof", "reason", "words"),
    [
        ("delivered", None, "consegnata il 12/03/2026 alle 10:15"),
        ("accepted", None, "accettata il 12/03/2026 alle 10:15"),
        ("not-delivered", "5.1.1 casella inesistente", "non consegnata: 5.1.1 casella inesistente"),
        ("not-delivered", None, "non consegnata: motivo non indicato"),
        ("sent", None, "inviata (nessuna ricevuta)"),
    ],
)
def test_each_proof_in_words(proof, reason, words):
    assert proof_words({"proof": proof, "proof_at": MOMENT, "reason": reason}) == words


def test_sdi_outcomes_in_words():
    assert sdi_words({"sdi": "RC", "sdi_at": MOMENT, "sdi_reason": None}) == (
        "SdI: RC, ricevuta di consegna, il 12/03/2026 alle 10:15"
    )
    assert sdi_words({"sdi": "NS", "sdi_at": None, "sdi_reason": "00404 Fattura duplicata"}) == (
        "SdI: NS, scartata (notifica di scarto): 00404 Fattura duplicata"
    )
