"""The SMTP session below delivery: verified TLS (implicit or STARTTLS), AUTH only under TLS,
the envelope in its wire form, one message per transaction, and each reply classified.
Touches no ledger: delivery records what the session reports."""
