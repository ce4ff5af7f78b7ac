"""E-mail addresses as they go on the wire, the same for the MIME headers, the SMTP envelope
and the routing that decides whether a message needs SMTPUTF8.
"""

from __future__ import annotations

import functools
import uuid
from email import errors as email_errors
from email.headerregistry import Address

from invoice_mailer.errors import InvoiceMailerError


def check_address(address: str) -> str:
    """The address as it goes on the wire (see wire_address), or raise a sentence naming it:
    every address reaches the wire."""
    if not isinstance(address, str):
        raise InvoiceMailerError(f"invalid e-mail address {address!r}: not text")
    return _checked(address)


# A month-end burst checks the same few addresses thousands of times (routing, then building):
# the stdlib's header parser is most of what each check costs. Refusals are not kept.
@functools.lru_cache(maxsize=4096)
def _checked(address: str) -> str:
    if not address.isprintable() or " " in address:
        reason = "spaces or control characters"
    else:
        try:
            wire = wire_address(address)
            local, _, domain = wire.rpartition("@")
            # The stdlib parses only ASCII names before the @: a UTF-8 one (RFC 6531) is
            # checked through an ASCII stand-in of the same shape.
            stand_in = "".join(c if c.isascii() else "u" for c in local)
            parsed = Address(addr_spec=f"{stand_in}@{domain}")
        except (ValueError, TypeError, IndexError, email_errors.HeaderParseError) as exc:
            reason = str(exc)
        else:
            if parsed.username and parsed.domain:
                return wire
            reason = "expected name@domain"
    raise InvoiceMailerError(f"invalid e-mail address {address!r}: {reason}")


def wire_address(address: str) -> str:
    """The domain in its ASCII form (IDNA: perché.it -> xn--perch-fsa.it), for the envelope
    and the headers alike; the name before the @ as it is (see needs_smtputf8)."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        raise ValueError(f"the domain {domain!r} has no ASCII (IDNA) form") from None


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII name before the @ can travel only where the server offers SMTPUTF8."""
    return not address.rpartition("@")[0].isascii()


def new_message_id(sender_address: str) -> str:
    """A fresh Message-ID in the sender's domain; stored before DATA, reused on a resend."""
    return f"<{uuid.uuid4().hex}@{check_address(sender_address).rpartition('@')[2]}>"
