"""Bounces as real servers write them (RFC 3464 multipart/report): Postfix (its notice text,
X-Postfix fields, the returned headers as text/rfc822-headers or the whole message) and
Exchange Online (an NDR with text and HTML, RESOLVER diagnostics, the message/rfc822).
"""

from __future__ import annotations

import uuid
from email.utils import format_datetime

from tests.support.receiptmail import SENDER, WHEN, crlf


def postfix_bounce(
    returned: bytes,
    recipient: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    action: str = "failed",
    headers_only: bool = True,
    to: str = SENDER,
) -> bytes:
    boundary = f"{uuid.uuid4().hex[:11].upper()}.1773306932/mx1.example.net"
    notice = (
        "This is the mail system at host mx1.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "For further assistance, please send mail to postmaster.\n\n"
        "                   The mail system\n\n"
        f"<{recipient}>: host mx.bianchi.example[192.0.2.25] said: 550 5.1.1\n"
        "    User unknown (in reply to RCPT TO command)\n"
    )
    status_part = (
        "Reporting-MTA: dns; mx1.example.net\nX-Postfix-Queue-ID: 4dQk3c1Z2Bz9tK\n"
        f"X-Postfix-Sender: rfc822; {to}\n"
        f"Arrival-Date: {format_datetime(WHEN)}\n\n"
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\nStatus: {status}\nRemote-MTA: dns; mx.bianchi.example\n"
        f"Diagnostic-Code: {diagnostic.format(r=recipient)}\n"
    )
    if headers_only:
        head = returned.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()
        returned_part = "Content-Description: Undelivered Message Headers\n"
        returned_part += f"Content-Type: text/rfc822-headers\n\n{head}\n"
    else:
        body = returned.replace(b"\r\n", b"\n").decode()
        returned_part = "Content-Description: Undelivered Message\n"
        returned_part += f"Content-Type: message/rfc822\n\n{body}"
    return crlf(
        f"Return-Path: <>\nDate: {format_datetime(WHEN)}\n"
        "From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)\n"
        f"Subject: Undelivered Mail Returned to Sender\nTo: {to}\nAuto-Submitted: auto-replied\n"
        f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
        f'\tboundary="{boundary}"\nContent-Transfer-Encoding: 8bit\n'
        f"Message-Id: <20260312101601.4dQk3c1Z2Bz9tK@mx1.example.net>\n\n"
        "This is a MIME-encapsulated message.\n\n"
        f"--{boundary}\nContent-Description: Notification\n"
        f"Content-Type: text/plain; charset=us-ascii\n\n{notice}\n"
        f"--{boundary}\nContent-Description: Delivery report\n"
        f"Content-Type: message/delivery-status\n\n{status_part}\n"
        f"--{boundary}\n{returned_part}\n--{boundary}--\n"
    )


def exchange_bounce(
    returned: bytes, recipient: str, *, status: str = "5.1.10", to: str = SENDER
) -> bytes:
    boundary = f"_000_{uuid.uuid4().hex}_"
    alternative = f"_001_{uuid.uuid4().hex}_"
    mta = "AM0PR02MB5987.eurprd02.prod.outlook.com"
    diagnostic = (
        f"smtp;550 {status} RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP\n"
        " address lookup"
    )
    body = returned.replace(b"\r\n", b"\n").decode()
    return crlf(
        f'From: "Microsoft Outlook" <postmaster@contoso.onmicrosoft.com>\nTo: {to}\n'
        f"Date: {format_datetime(WHEN)}\nSubject: Undeliverable: Fattura 201/2026\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{boundary}"\n'
        "Content-Language: en-US\nMIME-Version: 1.0\nX-MS-Exchange-Message-Is-Ndr:\n"
        f"Message-ID: <{uuid.uuid4()}@{mta}>\nAuto-Submitted: auto-replied\n\n"
        f'--{boundary}\nContent-Type: multipart/alternative; boundary="{alternative}"\n\n'
        f"--{alternative}\nContent-Type: text/plain; charset=us-ascii\n\n"
        f"Your message to {recipient} couldn't be delivered.\n"
        "The email address couldn't be found.\n\n"
        f"--{alternative}\nContent-Type: text/html; charset=us-ascii\n\n"
        f"<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>\n"
        f"--{alternative}--\n\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns;{mta}\nReceived-From-MTA: dns;mail.studiorossi.it\n"
        f"Arrival-Date: {format_datetime(WHEN)}\n\n"
        f"Original-Recipient: rfc822;{recipient}\nFinal-Recipient: rfc822;{recipient}\n"
        f"Action: failed\nStatus: {status}\nDiagnostic-Code: {diagnostic}\n"
        f"X-Display-Name: {recipient}\n\n"
        f"--{boundary}\nContent-Type: message/rfc822\n\n{body}\n--{boundary}--\n"
    )
