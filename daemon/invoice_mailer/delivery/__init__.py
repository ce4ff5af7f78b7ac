"""Delivery: writes each planned delivery once as the exact message (outbox), sends it over SMTP
with TLS, and classifies every outcome (sent, deferred with a durable retry, failed, unconfirmed).
Reads queued and deferred deliveries; writes their outcomes and the admin's notices.
"""
