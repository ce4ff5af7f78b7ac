"""The real service reads the real Dovecot while it sends: each receipt kind, a bounce and an
SdI notice change the right recipient's proof (or the XML's SdI outcome), the receipt is kept
byte for byte, `status` shows it, and the mailbox is byte for byte the same afterwards."""

from __future__ import annotations

import json

from invoice_mailer.demo.samples import make_fattura_xml
from tests.support.bouncemail import exchange_bounce, postfix_bounce
from tests.support.cli import run_cli
from tests.support.dovecot import needs_dovecot
from tests.support.helpers import drop, wait_until
from tests.support.receiptmail import (
    ARUBA,
    SENDER,
    anomaly_envelope,
    daticert,
    our_message,
    pec_receipt,
    provider_message,
    transport_envelope,
)
from tests.support.receipts_harness import (
    MAIL_CUSTOMER,
    PEC_CUSTOMER,
    cursor_at,
    notices_text,
    proof_of,
    proofs,
    receipts_config,
    receipts_rows,
    send_invoice,
    stored_receipts,
)
from tests.support.reliability_harness import query
from tests.support.sdimail import sdi_mail, sdi_notice, signed_p7m
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
    # The story: each receipt a step, with the stored file to open.
    flat = " ".join(text.split())
    assert f"Ricevuta di accettazione per {PEC_CUSTOMER}: accettata il 12/03/2026 alle" in flat
    assert f"Ricevuta di avvenuta consegna per {PEC_CUSTOMER}: consegnata il 12/03/2026" in flat
    assert str(stored) in [line.strip() for line in text.splitlines()]


def _kinds(mid: str) -> dict[str, tuple[str, bytes, str]]:
    """case → (recipient, the message that comes back, the proof it gives)."""
    pec, mail = PEC_CUSTOMER, MAIL_CUSTOMER
    envelope = transport_envelope(our_message(mid, mail), to=mail)
    return {
        "errore-consegna": (pec, pec_receipt("errore-consegna", mid, recipient=pec,
                            error="no-dest", error_detail="5.1.1 casella inesistente"),
                            "not-delivered"),
        "non-accettazione": (pec, pec_receipt("non-accettazione", mid, error="altro",
                             error_detail="messaggio non conforme"), "not-delivered"),
        "preavviso": (pec, pec_receipt("preavviso-errore-consegna", mid, recipient=pec),
                      "accepted"),
        "rilevazione-virus": (pec, pec_receipt("rilevazione-virus", mid, recipient=pec,
                              error="virus", virus=True), "not-delivered"),
        "presa-in-carico": (pec, pec_receipt("presa-in-carico", mid, recipient=pec), "accepted"),
        "postfix bounce": (mail, postfix_bounce(our_message(mid, mail), mail), "not-delivered"),
        "exchange bounce": (mail, exchange_bounce(our_message(mid, mail), mail), "not-delivered"),
        "bounce in a PEC anomaly": (mail, anomaly_envelope(postfix_bounce(envelope, mail)),
                                    "not-delivered"),
    }  # fmt: skip


def test_every_receipt_kind_and_bounce_changes_the_right_recipient(tmp_path, smtp_server, dovecot):
    config = receipts_config(tmp_path, smtp_server, dovecot)
    cases = list(_kinds("<x@y>"))
    with ServiceProcess(config):
        sent = {}
        for number, case in enumerate(cases, start=300):
            recipient = _kinds("<x@y>")[case][0]
            sent[case] = send_invoice(tmp_path, number, "C001" if recipient == PEC_CUSTOMER else
                                      "C002")["message_id"]  # fmt: skip
        # A second message to the same customer stays as it is: only the right one changes.
        untouched = send_invoice(tmp_path, 399)["message_id"]
        for case in cases:
            dovecot.deliver(_kinds(sent[case])[case][1])
        wait_until(lambda: cursor_at(tmp_path, len(cases)), 20)
    for case in cases:
        recipient, _data, proof = _kinds(sent[case])[case]
        assert proof_of(tmp_path, sent[case], recipient) == proof, case
    assert proof_of(tmp_path, untouched, PEC_CUSTOMER) == "sent"
    assert len(receipts_rows(tmp_path)) == len(cases) == len(stored_receipts(tmp_path))
    told = "\n".join(notices_text(tmp_path))
    assert "Fattura_300_2026_C001.pdf did not reach cliente@pec.bianchi.it: mancata consegna " \
           "(5.1.1 casella inesistente)" in told  # fmt: skip
    assert "Fattura_302_2026_C001.pdf is not yet delivered to cliente@pec.bianchi.it" in told
    assert "Fattura_305_2026_C002.pdf did not reach amministrazione@verdi.example: bounced by " \
           "mx1.example.net: 5.1.1 smtp; 550 5.1.1" in told  # fmt: skip
    report = run_cli("-c", str(config), "status").stdout
    assert "Not delivered, says the mailbox" in report
    assert "amministrazione@verdi.example: non consegnata: bounced by" in report


def test_sdi_notices_give_the_xml_its_outcome(tmp_path, smtp_server, dovecot):
    config = receipts_config(tmp_path, smtp_server, dovecot)
    with ServiceProcess(config):
        for name in ("IT01234567890_00001.xml", "IT01234567890_00002.xml"):
            drop(tmp_path / "export", name, make_fattura_xml(number=name[-6:-4]))
        wait_until(lambda: len(query(tmp_path / "state", "SELECT id FROM documents")) == 2, 15)
        scarto = sdi_notice("NS", "IT01234567890_00001.xml")
        dovecot.deliver(sdi_mail(scarto, "IT01234567890_00001_NS_001.xml", "NS"))
        consegna = sdi_notice("RC", "IT01234567890_00002.xml")
        dovecot.deliver(sdi_mail(signed_p7m(consegna), "IT01234567890_00002_RC_001.xml.p7m", "RC"))
        wait_until(lambda: cursor_at(tmp_path, 2), 20)
    outcome = {
        row["name"]: (row["sdi"], row["sdi_reason"])
        for row in query(tmp_path / "state", "SELECT name, sdi, sdi_reason FROM documents")
    }
    assert outcome == {
        "IT01234567890_00001.xml": ("NS", "00404 Fattura duplicata"),
        "IT01234567890_00002.xml": ("RC", None),
    }
    assert any("SdI refused IT01234567890_00001.xml" in text for text in notices_text(tmp_path))
    report = json.loads(run_cli("-c", str(config), "status", "--json", "--find", "00001").stdout)
    assert report["documents"][0]["sdi"] == "NS"
    text = run_cli("-c", str(config), "status", "--find", "00002").stdout
    assert "SdI: RC, ricevuta di consegna, il 12/03/2026 alle" in text
    assert "identificativo SdI 4501237" in " ".join(text.split())  # the notice, a step


def _forged(mid: str, file_name: str) -> list[bytes]:
    """Mail that looks like receipts for our message, and is not the provider's word."""
    consegna, pec = "avvenuta-consegna", PEC_CUSTOMER
    certificate = daticert(
        consegna, mid, ARUBA, {pec: True}, sender="altro@pec.example", delivered_to=pec
    )
    headers = {"X-Ricevuta": consegna, "X-Riferimento-Message-ID": mid}
    inside = pec_receipt(consegna, mid, recipient=pec)
    notice = sdi_notice("NS", file_name)
    reply = our_message("<reply@bianchi.it>", SENDER)
    return [
        provider_message(ARUBA, consegna, headers, "Ricevuta\n", certificate, None),
        pec_receipt(consegna, mid, recipient=pec, daticert_message_id="<other@pec.studiorossi.it>"),
        pec_receipt(consegna, mid, recipient=pec, signed=False),
        transport_envelope(inside, sender="truffatore@pec.example"),
        pec_receipt(consegna, "<never-sent@pec.studiorossi.it>", recipient=pec),
        pec_receipt(consegna, mid, recipient="someone-else@pec.example"),
        postfix_bounce(our_message("<never-sent@x.it>", pec), pec),
        sdi_mail(notice, "IT01234567890_00001_NS_001.xml", "NS", sender="finto-sdi@pec.example"),
        reply.replace(b"Subject:", b"In-Reply-To: " + mid.encode() + b"\r\nSubject:"),
    ]


def test_forged_receipts_and_unrelated_mail_change_nothing(tmp_path, smtp_server, dovecot):
    config = receipts_config(tmp_path, smtp_server, dovecot)
    file_name = "IT01234567890_00001.xml"
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", file_name, make_fattura_xml())
        mid = send_invoice(tmp_path, 401)["message_id"]
        forged = _forged(mid, file_name)
        for data in forged:
            dovecot.deliver(data)
        before = dovecot.snapshot()
        wait_until(lambda: cursor_at(tmp_path, len(forged)), 20)
        log = service.log()
    assert proof_of(tmp_path, mid, PEC_CUSTOMER) == "sent"
    assert receipts_rows(tmp_path) == [] and stored_receipts(tmp_path) == []
    assert notices_text(tmp_path) == []
    assert [row["sdi"] for row in query(tmp_path / "state", "SELECT sdi FROM documents")] == [
        None,
        None,
    ]
    assert dovecot.snapshot() == before
    assert "for a message altro@pec.example sent" in log
    assert "which the service never sent" in log
    assert "not certified as sent by SdI" in log
