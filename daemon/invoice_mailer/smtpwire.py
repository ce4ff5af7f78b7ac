"""The SMTP wire below the session: TLS verification settings and DATA's dot-stuffing."""

from __future__ import annotations

import ssl

from .config import SmtpConfig
from .smtpoutcome import SmtpFailure

CHUNK_SIZE = 64 * 1024


def dot_stuff(chunk: bytes, tail: bytes) -> bytes:
    """Double the dot that starts a line (RFC 5321 §4.5.2), also right after a chunk boundary.

    `tail` is the last two bytes already sent (b"\\r\\n" at the start of the message).
    """
    joined = tail + chunk
    # A match is 3 bytes and the tail 2: every inserted dot lands after the tail's bytes.
    return joined.replace(b"\r\n.", b"\r\n..")[len(tail) :]


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificates verified against the system store (plus smtp.ca_file), host name checked."""
    # create_default_context() checks the chain and the host name; smtplib alone checks
    # nothing (CPython gh-91826).
    context = ssl.create_default_context()
    if config.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(config.ca_file))
        except OSError as err:
            raise SmtpFailure(
                "tls", "tls", None, "", f"cannot use smtp.ca_file {config.ca_file}: {err}"
            ) from err
    return context
