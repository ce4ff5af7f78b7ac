"""Ledger: SQLite in state_dir/ledger.db, the only source of truth about what was sent.
Owns the states (`states`), the schema (`database`) and the queries every stage goes through.
Reads and writes every table; the other packages never hold SQL of their own.
"""
