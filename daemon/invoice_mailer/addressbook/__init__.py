"""The address book ("Anagrafico Clienti"): customers from a CSV or YAML file, reloaded when it
changes, every cell checked.
Touches no ledger: routing asks it who a code, P.IVA or Codice Fiscale belongs to.
"""
