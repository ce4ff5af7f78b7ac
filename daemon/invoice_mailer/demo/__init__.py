"""`invoice-mailer demo`: the real service on an embedded local SMTP server (aiosmtpd with STARTTLS
and AUTH) and sample invoices made from scratch, in under a minute.
Reads the demo's own ledger for its closing table; writes nothing outside a temporary folder.
"""
