"""The office's view: one search, one story per document, and the read-only web page.
Reads the ledger (opened read-only), the address book and the archive; writes nothing.
Used by `status --find` and `invoice-mailer web`.
"""
