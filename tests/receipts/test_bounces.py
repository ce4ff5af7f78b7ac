"""Bounces: Postfix and Exchange reports, also inside a PEC anomaly envelope and quoting a PEC
transport envelope, give each recipient's action and reason and the bounced Message-ID."""

from __future__ import annotations

import pytest

from invoice_mailer.receipts.bounces import Bounce, parse_bounce
from invoice_mailer.receipts.mail import Unrecognised
from tests.support.bouncemail import exchange_bounce, postfix_bounce
from tests.support.receiptmail import (
    anomaly_envelope,
    our_message,
    pec_receipt,
    transport_envelope,
)

OURS = "<0d9f3b7e61a24c55@pec.studiorossi.it>"
CUSTOMER = "amministrazione@bianchi.example"


def bounce(data: bytes) -> Bounce:
    result = parse_bounce(data)
    assert isinstance(result, Bounce), result
    return result


@pytest.mark.parametrize("headers_only", [True, False], ids=["headers", "whole message"])
def test_postfix_bounce_names_the_recipient_the_reason_and_our_message(headers_only):
    got = bounce(postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER, headers_only=headers_only))
    assert got.message_id == OURS
    assert got.reporting_mta == "mx1.example.net"
    assert not got.in_pec_anomaly
    (status,) = got.recipients
    assert status.recipient == CUSTOMER
    assert status.failed and status.status == "5.1.1"
    assert status.diagnostic is not None and "User unknown" in status.diagnostic
    assert status.remote_mta == "mx.bianchi.example"


def test_one_report_for_two_recipients():
    data = postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER)
    second = b"\r\nFinal-Recipient: rfc822; ufficio@bianchi.example\r\nAction: delivered\r\n"
    second += b"Status: 2.0.0\r\n"
    data = data.replace(b"User unknown\r\n\r\n--", b"User unknown\r\n" + second + b"\r\n--", 1)
    first, other = bounce(data).recipients
    assert (first.recipient, first.failed) == (CUSTOMER, True)
    assert (other.recipient, other.action, other.status) == (
        "ufficio@bianchi.example",
        "delivered",
        "2.0.0",
    )


def test_a_delay_report_is_not_a_failure():
    got = bounce(
        postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER, action="delayed", status="4.4.1")
    )
    assert got.recipients[0].action == "delayed" and not got.recipients[0].failed


def test_exchange_ndr_with_folded_diagnostic():
    got = bounce(exchange_bounce(our_message(OURS, CUSTOMER), CUSTOMER))
    (status,) = got.recipients
    assert got.message_id == OURS
    assert status.status == "5.1.10" and status.original_recipient == CUSTOMER
    assert status.diagnostic == (
        "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    )


def test_a_bounce_of_our_pec_message_quotes_the_transport_envelope():
    # From a PEC box to an ordinary address: the provider's envelope travelled, so the
    # returned headers carry its Message-ID and ours as X-Riferimento-Message-ID.
    envelope = transport_envelope(our_message(OURS, CUSTOMER), to=CUSTOMER)
    got = bounce(postfix_bounce(envelope, CUSTOMER))
    assert got.returned_reference_id == OURS
    assert got.returned_message_id is not None and got.returned_message_id.startswith("<opec")
    assert got.message_id == OURS


def test_a_bounce_that_reached_the_pec_box_inside_an_anomaly_envelope():
    envelope = transport_envelope(our_message(OURS, CUSTOMER), to=CUSTOMER)
    got = bounce(anomaly_envelope(postfix_bounce(envelope, CUSTOMER)))
    assert got.in_pec_anomaly
    assert got.message_id == OURS
    assert got.recipients[0].recipient == CUSTOMER and got.recipients[0].failed


def test_global_delivery_status_is_read_too():
    data = postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER)
    data = data.replace(b"report-type=delivery-status", b"report-type=global-delivery-status")
    data = data.replace(b"message/delivery-status", b"message/global-delivery-status")
    got = bounce(data)
    assert got.recipients[0].recipient == CUSTOMER and got.message_id == OURS


@pytest.mark.parametrize(
    "data",
    [
        our_message(OURS, CUSTOMER),
        pec_receipt("errore-consegna", OURS, recipient=CUSTOMER),
        transport_envelope(postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER)),
        b"",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x",
    ],
    ids=["ordinary", "pec receipt", "inside a transport envelope", "empty", "truncated"],
)
def test_what_is_not_a_bounce(data):
    result = parse_bounce(data)
    assert isinstance(result, Unrecognised), result
    assert result.reason.startswith("not a bounce")


def test_a_report_without_recipients_is_not_a_bounce():
    data = postfix_bounce(our_message(OURS, CUSTOMER), CUSTOMER)
    data = data.replace(b"Final-Recipient", b"X-Final-Recipient")
    assert "without any Final-Recipient" in parse_bounce(data).reason  # type: ignore[union-attr]
