"""invoice-mailer: sends exported invoices to customers and the accountant over SMTP."""

__version__ = "0.1.0"
