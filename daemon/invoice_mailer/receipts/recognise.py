"""What one message of the sender's mailbox is: a PEC receipt, a bounce, an SdI notice, or
something unrelated (most of a busy PEC box: the office's own mail). Only the headers decide
which parser reads a message, so unrelated mail costs a header parse and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from invoice_mailer.receipts import mail
from invoice_mailer.receipts.bounces import Bounce, parse_bounce
from invoice_mailer.receipts.mail import Unrecognised
from invoice_mailer.receipts.pec import PecReceipt, parse_receipt
from invoice_mailer.receipts.sdi import SdiMail, parse_sdi_mail

_REPORT = "multipart/report"


@dataclass(frozen=True)
class Unrelated:
    """Nothing the service has to do with; `reason` says why, for the debug log."""

    reason: str


Recognised = PecReceipt | Bounce | SdiMail | Unrelated


def recognise(data: bytes, max_size: int = mail.DEFAULT_MAX_SIZE) -> Recognised:
    """The kind of one message, read by the one parser its headers call for; never raises."""
    if len(data) > max_size:
        return Unrelated(f"too large to be a receipt ({len(data)} bytes)")
    try:
        head = mail.read_headers(data)
        receipt = mail.header(head, "X-Ricevuta")
        transport = (mail.header(head, "X-Trasporto") or "").lower()
        content_type = head.get_content_type()
    except Exception as exc:  # the email package can raise almost anything on broken input
        return Unrelated(f"unreadable headers ({type(exc).__name__})")
    found: PecReceipt | Bounce | SdiMail | Unrecognised
    if receipt:
        found = parse_receipt(data, max_size)
    elif transport == "errore" or content_type == _REPORT:
        found = parse_bounce(data, max_size)  # an ordinary server's bounce, maybe in an anomaly
    elif transport:
        found = parse_sdi_mail(data, max_size)  # only SdI's own PEC matters among envelopes
    else:
        return Unrelated("an ordinary message (no receipt, report or PEC envelope headers)")
    return Unrelated(found.reason) if isinstance(found, Unrecognised) else found
