"""The service: wires watch, intake, routing, delivery, bundles and archive on their threads, holds
the state directory's lock, speaks to systemd and alerts the admin.
Reads the ledger for the status line and alerts; writes nothing but through the stages.
"""
