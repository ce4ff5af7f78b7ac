"""Reliability and security suite (issue 10): faults, crashes and hostile input, nothing lost."""
