"""Archive: a document leaves the spool for state_dir/archive (sent) or closed/ (superseded,
dismissed) only when every delivery of it is done.
Reads documents and their deliveries; writes the document's final state and its archived path.
"""
