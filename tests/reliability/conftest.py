"""Every test in this folder is marked `reliability` (`pytest -m reliability` runs them alone;
`-m "not reliability"` skips them). The figures the issue's closing note needs are collected
here, printed at the end of the run and written to a file under the temporary directory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from tests.support.dovecot import dovecot  # noqa: F401  (fixture: test_receipts's IMAP server)
from tests.support.reliability_harness import FIGURES

HERE = Path(__file__).parent
FIGURES_FILE = Path(tempfile.gettempdir()) / "invoice-mailer-reliability-figures.txt"
_clock: list[float] = []  # when the first reliability test began, when the last one ended


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees every collected item, not only this folder's: mark ours only.
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(autouse=True)
def _suite_clock():
    """The suite's wall time runs from its first test to its last."""
    if not _clock:
        _clock[:] = [time.monotonic(), 0.0]
    yield
    _clock[1] = time.monotonic()


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES.lines():
        return
    lines = [*FIGURES.lines(), f"suite time: {_clock[1] - _clock[0]:.0f} s (these tests only)"]
    text = "\n".join(lines) + "\n"
    FIGURES_FILE.write_text(text, encoding="utf-8")
    terminalreporter.write_sep("-", f"reliability figures (also in {FIGURES_FILE})")
    terminalreporter.write(text)
