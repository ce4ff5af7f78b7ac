"""Bundles ("Tutto a"): every document joins the accountant's open working session; a closed
session becomes one message with everything in it.
Reads sessions and their documents; writes sessions and the bundle's planned delivery.
"""
