"""Bounces: delivery status notifications (RFC 3464 `multipart/report;
report-type=delivery-status`, or RFC 6533's global-delivery-status) as Postfix, Exim, Exchange
and Gmail write them, also an ordinary server's bounce that reached a PEC box and arrived there
inside a PEC anomaly envelope.

Which message bounced is read from the returned headers (`text/rfc822-headers` or the whole
`message/rfc822`). A message sent from a PEC box travelled inside the provider's transport
envelope, so an ordinary server returns the envelope's headers: their Message-ID is the
provider's, and ours is the envelope's `X-Riferimento-Message-ID`. Bounces are not signed:
whether the Message-ID and recipient are ones we sent is the ledger's question.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32

from invoice_mailer.receipts import mail
from invoice_mailer.receipts.envelope import EnvelopeKind, open_envelope
from invoice_mailer.receipts.mail import Unreadable, Unrecognised

log = logging.getLogger(__name__)

_REPORT_TYPES = ("delivery-status", "global-delivery-status")
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
# Only the headers matter: a whole returned message is read for them too.
_HEADERS_TYPES = ("text/rfc822-headers", "message/global-headers")
_MESSAGE_TYPES = ("message/rfc822", "message/global")
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of the report."""

    recipient: str  # Final-Recipient, the bare address, lower-cased
    original_recipient: str | None  # Original-Recipient, when the server kept it
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str | None  # the enhanced status code, e.g. 5.1.1
    diagnostic: str | None  # Diagnostic-Code: the remote server's own words
    remote_mta: str | None

    @property
    def failed(self) -> bool:
        return self.action == "failed"


@dataclass(frozen=True)
class Bounce:
    reporting_mta: str | None
    recipients: tuple[RecipientStatus, ...]
    returned_message_id: str | None  # the returned headers' Message-ID
    returned_reference_id: str | None  # their X-Riferimento-Message-ID, in a PEC envelope's
    in_pec_anomaly: bool  # it reached a PEC box and came wrapped in an anomaly envelope

    @property
    def message_id(self) -> str | None:
        """The Message-ID we gave the bounced message, as far as the report shows it."""
        return self.returned_reference_id or self.returned_message_id


def parse_bounce(data: bytes, max_size: int = mail.DEFAULT_MAX_SIZE) -> Bounce | Unrecognised:
    """The delivery status report one mail is, or why it is none; hostile input never raises."""
    try:
        return _bounce(mail.read_message(data, max_size))
    except Unreadable as exc:
        return Unrecognised(f"not a bounce: {exc}")
    except Exception as exc:  # the email package can raise almost anything on broken input
        log.debug("bounce parser failed", exc_info=True)
        return Unrecognised(f"not a bounce: unreadable message ({type(exc).__name__})")


def _bounce(message: Message) -> Bounce:
    envelope = open_envelope(message)
    if envelope is not None and envelope.kind is not EnvelopeKind.ANOMALY:
        raise Unreadable("a PEC transport envelope: a message someone sent")
    if envelope is not None:
        if envelope.inner is None:
            raise Unreadable("a PEC anomaly envelope without the message (postacert.eml)")
        message = envelope.inner
    report_type = str(message.get_param("report-type") or "").lower()
    if message.get_content_type() != "multipart/report" or report_type not in _REPORT_TYPES:
        raise Unreadable("not a delivery status report (multipart/report, RFC 3464)")
    children = [part for part in message.get_payload() if isinstance(part, Message)]
    status_parts = [part for part in children if part.get_content_type() in _STATUS_TYPES]
    if not status_parts:
        raise Unreadable("a report without its message/delivery-status part")
    blocks = _status_blocks(status_parts[0])
    recipients = tuple(status for block in blocks[1:] if (status := _recipient(block)))
    if not recipients:
        raise Unreadable("a delivery status without any Final-Recipient")
    returned = _returned_headers(children)
    transported = returned is not None and mail.header(returned, "X-Trasporto") is not None
    return Bounce(
        reporting_mta=_after_type(mail.header(blocks[0], "Reporting-MTA")) if blocks else None,
        recipients=recipients,
        returned_message_id=mail.message_id(_get(returned, "Message-ID")),
        returned_reference_id=(
            mail.message_id(_get(returned, "X-Riferimento-Message-ID")) if transported else None
        ),
        in_pec_anomaly=envelope is not None,
    )


def _status_blocks(part: Message) -> list[Message]:
    """The report's header blocks: the per-message one first, then one per recipient."""
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]  # split by the parser
    # global-delivery-status (UTF-8), which the parser reads as one message: split by hand.
    text = mail.raw_body(part).decode("utf-8", "replace")
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(block.strip() + "\n") for block in _BLANK_LINE.split(text)]


def _recipient(block: Message) -> RecipientStatus | None:
    final = _after_type(mail.header(block, "Final-Recipient"))
    recipient = mail.address(final) or (final.lower() if final else None)
    if recipient is None:
        return None
    status = mail.header(block, "Status") or ""
    code = _STATUS_CODE.search(status)
    original = _after_type(mail.header(block, "Original-Recipient"))
    return RecipientStatus(
        recipient=recipient,
        original_recipient=mail.address(original) if original else None,
        action=(mail.header(block, "Action") or "").split(" ")[0].lower(),
        status=code.group(1) if code else None,
        diagnostic=mail.header(block, "Diagnostic-Code"),
        remote_mta=_after_type(mail.header(block, "Remote-MTA")),
    )


def _returned_headers(children: list[Message]) -> Message | None:
    for part in children:
        kind = part.get_content_type()
        if kind in _HEADERS_TYPES or kind in _MESSAGE_TYPES:
            return BytesHeaderParser(policy=compat32).parsebytes(mail.raw_body(part))
    return None


def _after_type(value: str | None) -> str | None:
    """`rfc822; a@b.it` → `a@b.it`; `dns; mx.example.com` → `mx.example.com`."""
    if value is None:
        return None
    _kind, separator, rest = value.partition(";")
    return (rest if separator else value).strip() or None


def _get(message: Message | None, name: str) -> str | None:
    return mail.header(message, name) if message is not None else None
