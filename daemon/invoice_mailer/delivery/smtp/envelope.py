"""The SMTP envelope: addresses as they go on the wire (the domain in its ASCII IDNA form; a
non-ASCII name before the @ only where the server offers SMTPUTF8), MAIL FROM's options, and
what "no recipient accepted" means. Pure: the session in session.py does the talking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from invoice_mailer.addresses import needs_smtputf8, wire_address
from invoice_mailer.delivery.smtp.outcome import SmtpFailure, classify

# RFC 6531 §3.7.4.1: the reply a server gives to a UTF-8 address it cannot take.
NO_SMTPUTF8 = 553


@dataclass(frozen=True)
class Envelope:
    """MAIL FROM and its options; RCPT TO as wire form -> the caller's spelling (the ledger's);
    `refused`: recipients that cannot be sent to this server at all, with a reason."""

    sender: str
    options: tuple[str, ...]
    recipients: dict[str, str]
    refused: dict[str, tuple[int, str]]


def plan_envelope(
    sender: str, recipients: Sequence[str], size: int, features: Mapping[str, str], where: str
) -> Envelope:
    """`features` is smtplib's esmtp_features (lower-case names) after EHLO."""
    limit = features.get("size", "")
    if limit.isdigit() and 0 < int(limit) < size:
        raise SmtpFailure(
            "permanent", "mail", None, "",
            f"the message is {size} bytes, {where} accepts at most {limit} (SIZE)",
        )  # fmt: skip
    utf8 = "smtputf8" in features
    try:
        wire_sender = wire_address(sender)
    except ValueError as exc:
        raise SmtpFailure("permanent", "mail", None, "", f"sender.address: {exc}") from None
    if needs_smtputf8(sender) and not utf8:
        raise SmtpFailure(
            "permanent", "mail", None, "",
            f"sender.address {sender} has non-ASCII letters before the @, and {where} does not "
            "offer SMTPUTF8: use an ASCII sender address",
        )  # fmt: skip
    wire: dict[str, str] = {}
    refused: dict[str, tuple[int, str]] = {}
    for recipient in recipients:
        try:
            wire.setdefault(wire_address(recipient), recipient)
        except ValueError as exc:
            refused[recipient] = (NO_SMTPUTF8, f"5.1.3 {recipient}: {exc}")
            continue
        if needs_smtputf8(recipient) and not utf8:
            del wire[wire_address(recipient)]
            refused[recipient] = (
                NO_SMTPUTF8,
                f"5.6.7 {recipient} has non-ASCII letters before the @ and {where} does not "
                "offer SMTPUTF8 (RFC 6531): not sent to this address",
            )
    options = []
    if "size" in features:
        options.append(f"SIZE={size}")
    if "8bitmime" in features:
        options.append("BODY=8BITMIME")
    if utf8 and not all(address.isascii() for address in (wire_sender, *wire)):
        options.append("SMTPUTF8")
    return Envelope(wire_sender, tuple(options), wire, refused)


def no_recipient_accepted(refused: dict[str, tuple[int, str]]) -> SmtpFailure:
    """Every RCPT refused: permanent only when every refusal was."""
    kinds = {classify("rcpt", code, None) for code, _ in refused.values()}
    kind = "permanent" if kinds == {"permanent"} else "transient"
    lines = [f"{code} {text} (RCPT TO {rcpt})" for rcpt, (code, text) in refused.items()]
    code, text = next(iter(refused.values()))
    message = lines[0] if len(lines) == 1 else "no recipient accepted: " + "; ".join(lines)
    return SmtpFailure(kind, "rcpt", code, text, message, refused)
