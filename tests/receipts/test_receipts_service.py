"""The real service reads the real Dovecot while it sends: each receipt kind, a bounce and an
SdI notice change the right recipient's proof (or the XML's SdI outcome), the receipt is kept
byte for byte, `status` shows it, and the mailbox is byte for byte the same afterwards."""

from __future__ import annotations

import json

from tests.support.cli import run_cli
from tests.support.dovecot import needs_dovecot
from tests.support.helpers import wait_until
from tests.support.receiptmail import our_message, pec_receipt
from tests.support.receipts_harness import (
    PEC_CUSTOMER,
    proof_of,
    proofs,
    receipts_config,
    receipts_rows,
    send_invoice,
)
from tests.support.service_harness import ServiceProcess

pytestmark = needs_dovecot


def test_accettazione_then_consegna_prove_delivery(tmp_path, smtp_server, dovecot):
    config = receipts_config(tmp_path, smtp_server, dovecot)
    with ServiceProcess(config) as service:
        sent = send_invoice(tmp_path, 201)
        message_id = sent["message_id"]
        assert proof_of(tmp_path, message_id, PEC_CUSTOMER) == "sent"
        original = our_message(message_id, PEC_CUSTOMER)
        accepted = pec_receipt("accettazione", message_id, recipient=None,
                               addressees={PEC_CUSTOMER: True})  # fmt: skip
        dovecot.deliver(accepted)
        wait_until(lambda: proof_of(tmp_path, message_id, PEC_CUSTOMER) == "accepted", 15)
        delivered = pec_receipt(
            "avvenuta-consegna", message_id, recipient=PEC_CUSTOMER, original=original
        )
        dovecot.deliver(delivered)
        wait_until(lambda: proof_of(tmp_path, message_id, PEC_CUSTOMER) == "delivered", 15)
        before = dovecot.snapshot()
        log = service.log()
    row = proofs(tmp_path)[f"{message_id} {PEC_CUSTOMER}"]
    stored = tmp_path / "state" / row["receipt_path"]
    assert stored.read_bytes() == delivered
    assert [r["kind"] for r in receipts_rows(tmp_path)] == ["accettazione", "avvenuta-consegna"]
    assert dovecot.snapshot() == before
    assert "avvenuta-consegna for Fattura_201_2026_C001.pdf" in log
    report = json.loads(run_cli("-c", str(config), "status", "--json", "--find", "201").stdout)
    (document,) = report["documents"]
    (customer,) = [d for d in document["deliveries"] if d["purpose"] == "customer"]
    (recipient,) = customer["recipients"]
    assert recipient["address"] == PEC_CUSTOMER and recipient["proof"] == "delivered"
    assert recipient["receipt"] == str(stored) and recipient["proof_at"].startswith("2026-03-12")
    text = run_cli("-c", str(config), "status", "--find", "201").stdout
    assert "consegnata il 12/03/2026 alle" in text
