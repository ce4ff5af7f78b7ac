"""Routing: finds who receives each taken document (address book, FatturaPA P.IVA / CF) and plans
one delivery per recipient (customer, Copia a), or holds the document with a reason.
Reads `taken` documents; writes planned deliveries and moves documents to `routed` or `held`.
"""
