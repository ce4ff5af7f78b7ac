"""The address book in force for the running service: reloaded when its file changes, the
previous one kept (and the problem logged once) when the new file cannot be used."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from invoice_mailer.addressbook.book import AddressBook, load_address_book
from invoice_mailer.config.model import CsvConfig
from invoice_mailer.errors import ConfigError

log = logging.getLogger(__name__)


class AddressBookSource:
    """The book in force: reloaded when its file changes, kept when the new file is unusable."""

    def __init__(self, path: Path | None, csv: CsvConfig):
        self.path = path
        self.csv = csv
        self._book = AddressBook()
        self._stamp: tuple[int, ...] | None = ()  # (): never read; None: the file is missing
        self._lock = threading.Lock()

    @property
    def book(self) -> AddressBook:
        return self._book

    def load(self) -> AddressBook:
        """The initial load: raise ConfigError when the file cannot be used at all."""
        if self.path is not None:
            with self._lock:
                stamp = self._peek()
                self._swap(load_address_book(self.path, self.csv), stamp, "loaded")
        return self._book

    def reload_if_changed(self) -> bool:
        """One stat when nothing changed; True when a new book is in force."""
        if self.path is None:
            return False
        with self._lock:
            stamp = self._peek()
            if stamp == self._stamp:
                return False
            try:
                book: AddressBook | None = load_address_book(self.path, self.csv)
            except ConfigError as exc:
                book, error = None, exc
            if self._peek() != stamp:
                return False  # changed while being read: the next call reads the finished file
            if book is None:
                self._stamp = stamp  # report a broken file once, not at every check
                kept = f"keeping the previous address book ({len(self._book)} customers)"
                log.error("%s\n  %s", error, kept)
                return False
            self._swap(book, stamp, "reloaded")
            return True

    def _peek(self) -> tuple[int, ...] | None:
        assert self.path is not None  # noqa: S101 (a type narrowing, not a check: _peek runs only with a path)
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _swap(self, book: AddressBook, stamp: tuple[int, ...] | None, verb: str) -> None:
        self._book, self._stamp = book, stamp
        rows = "row" if book.skipped == 1 else "rows"
        log.info(
            "address book %s: %d customers (%d %s skipped)", verb, len(book), book.skipped, rows
        )
        for problem in book.problems:
            log.warning("%s: %s", self.path, problem)
