"""Receipts: reads the sender's mailbox over IMAP (never changing it) and recognises what comes
back for the messages the service sent: PEC receipts, bounces (RFC 3464) and SdI notices.
Reads sent deliveries and the per-folder IMAP cursors; writes receipts, each recipient's proof.
"""
