"""Intake: takes ownership of each finished file, checks it is the PDF, XML or p7m it claims to be,
and moves it durably into the spool.
Reads the ledger's documents to stay idempotent; writes documents (state `taken`) and their events.
"""
