"""The receipts tests' real IMAP server (tests/support/dovecot.py)."""

from tests.support.dovecot import dovecot, dovecot_factory  # noqa: F401  (fixtures)
