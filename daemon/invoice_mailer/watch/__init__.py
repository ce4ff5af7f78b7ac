"""Watch: notices files in the export folder (inotify, or polling on network mounts) and tells
when each is finished writing.
Reads nothing from the ledger and writes nothing to it: it only names paths for intake.
"""
