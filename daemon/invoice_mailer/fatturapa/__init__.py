"""FatturaPA documents: the XML (plain or inside a signed `.p7m`) read for what routing needs,
within the schema's own field limits.
Touches no ledger: intake and routing call it on a file they hold.
"""
