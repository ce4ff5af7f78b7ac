"""A guard that fails the run when a test reads a file outside the checkout.

Tests once read samples from a folder beside the clone; on a machine with only the clone,
collection failed. An audit hook (PEP 578) sees every open and directory listing in the test
process and refuses paths that are neither in the checkout nor in a system, Python, home or
temporary folder, and anything beside the checkout. The processes a test starts are not seen
here: `.ci/run` hides the checkout's neighbours from them too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_EVENTS = ("open", "os.listdir", "os.scandir")
_SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/dev", "/proc", "/sys")
_SYSTEM += ("/run", "/var", "/opt", "/snap", "/nix")


class OutsideCheckout(AssertionError):
    """A test read something that a bare clone does not have."""


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Guard:
    """Which paths a test may read, given where the checkout is."""

    def __init__(self, checkout: Path) -> None:
        self.checkouts = {os.path.abspath(checkout), os.path.realpath(checkout)}
        self.beside = {os.path.dirname(c) for c in self.checkouts}
        roots = {*_SYSTEM, sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir()}
        roots.add(str(Path.home()))
        self.roots = {os.path.abspath(r) for r in roots if not self._in_checkout(r)}
        # A checkout straight in /, /tmp or home has no neighbours of its own to tell apart.
        self.beside = {b for b in self.beside if not any(_under(r, b) for r in self.roots)}
        self.reached: list[str] = []

    def _in_checkout(self, path: str) -> bool:
        return any(_under(os.path.abspath(path), c) for c in self.checkouts)

    def outside(self, path: str) -> bool:
        """True for a path a bare clone on a fresh machine may not have."""
        path = os.path.abspath(path)
        if self._in_checkout(path):
            return False
        if any(_under(path, b) for b in self.beside):
            return True
        return not any(_under(path, r) for r in self.roots)

    def hook(self, event: str, args: tuple) -> None:
        if event not in _EVENTS or not args or isinstance(args[0], int) or args[0] is None:
            return
        path = os.fsdecode(args[0])
        if self.outside(path):
            self.reached.append(path)
            raise OutsideCheckout(f"a test reads {path}, outside the checkout: keep it in tests/")


def install(checkout: Path) -> Guard:
    """Watch this process's file access for the rest of its life (audit hooks stay)."""
    guard = Guard(checkout)
    sys.addaudithook(guard.hook)
    return guard
