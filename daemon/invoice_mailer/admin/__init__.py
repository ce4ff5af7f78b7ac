"""The admin's commands behind `status`, `retry` and `dismiss`: the queue as the office sees it,
and hands on it through the ledger only.
Reads every table for the report; writes retried, resent and dismissed states.
"""
