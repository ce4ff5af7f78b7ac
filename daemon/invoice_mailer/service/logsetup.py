"""Logging set up once: plain lines on stderr, no timestamps under systemd's journal."""

from __future__ import annotations

import logging
import os
import sys

# sd-daemon(3) priority prefixes, so `journalctl -p warning` works without a journal library.
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # A file name may hold a newline: what follows it must not pass for a record of its own.
        first, *rest = super().format(record).split("\n")
        return "\n".join([first, *(f"    {line}" for line in rest)])


class _JournalFormatter(_PlainFormatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def configure(level: str = "info", verbose: bool = False) -> None:
    """Route the package's log records to stderr; call again to change the level (reload)."""
    root = logging.getLogger("invoice_mailer")
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        if os.environ.get("JOURNAL_STREAM"):
            handler.setFormatter(_JournalFormatter("%(message)s"))
        else:
            handler.setFormatter(
                _PlainFormatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")
            )
        root.addHandler(handler)
    # watchdog warns on stderr about events racing its own shutdown: noise for the admin.
    logging.getLogger("watchdog").setLevel(logging.ERROR)
