"""The configuration: the YAML read strictly, every problem listed at once with its line, typed as
frozen data; the encrypted SMTP password; what `check` finds.
Touches no ledger.
"""
