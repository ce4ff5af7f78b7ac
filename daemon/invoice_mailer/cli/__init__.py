"""The command line: the only place that prints or exits.
Each subcommand calls one stage's function and turns its outcome or error into text and a status.
Touches the ledger only through the admin and service packages.
"""
