"""OAuth2 sign-in for the mail server (smtp.auth: xoauth2): the device flow once (`login`),
the refresh token kept encrypted in state_dir, and fresh access tokens for SASL XOAUTH2,
used by delivery (SMTP) and receipts (IMAP)."""
