"""Provider limits (smtp.rate): counted from the ledger's sent times, so they survive restarts."""

from __future__ import annotations

from invoice_mailer.config.model import RateConfig
from invoice_mailer.ledger.database import Ledger

WINDOWS = (("per_minute", 60.0), ("per_hour", 3600.0), ("per_day", 86400.0))


def wait_needed(rate: RateConfig, ledger: Ledger, now: float) -> tuple[float, str]:
    """Seconds to wait before the next message may go, and which limit says so."""
    longest, which = 0.0, ""
    for name, seconds in WINDOWS:
        limit = getattr(rate, name)
        if not limit:
            continue
        # The limit-th most recent message inside the window: while it is in there, wait.
        row = ledger.one(
            "SELECT sent_at FROM deliveries WHERE sent_at > ? ORDER BY sent_at DESC "
            "LIMIT 1 OFFSET ?",
            now - seconds,
            limit - 1,
        )
        if row is not None:
            wait = row[0] + seconds - now
            if wait > longest:
                longest, which = wait, f"{name.replace('_', ' ')}: {limit}"
    return longest, which
