"""The guard that keeps the tests runnable from a bare clone (tests/support/outside.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.outside import Guard

REPO = Path(__file__).resolve().parents[2]


def test_a_folder_beside_the_checkout_is_outside_the_checkout_and_system_folders_are_not(
    tmp_path,
):
    guard = Guard(tmp_path / "work" / "clone")
    assert guard.outside(str(tmp_path / "work" / "shared" / "samples" / "a.xml"))
    assert guard.outside("/work/shared/samples/fatturapa/IT01234567890_FPR01.xml")
    assert not guard.outside(str(tmp_path / "work" / "clone" / "tests" / "data" / "a.xml"))
    assert not guard.outside("/usr/lib/python3/dist-packages/x.py")
    assert not guard.outside("/proc/self/mountinfo")
    assert not guard.outside(str(tmp_path / "pytest-of-root" / "x"))  # the temporary folder


def run_pytest_in_fake_checkout(tmp_path: Path, test_body: str) -> subprocess.CompletedProcess:
    """pytest in a clone-like folder with the guard installed, beside a `shared/` folder."""
    clone = tmp_path / "ci" / "clone"
    shared = tmp_path / "ci" / "shared"
    clone.mkdir(parents=True)
    shared.mkdir()
    (shared / "sample.xml").write_text("<a/>")
    (clone / "conftest.py").write_text(
        "from pathlib import Path\nfrom tests.support import outside\n"
        "GUARD = outside.install(Path(__file__).resolve().parent)\n"
        "def pytest_sessionfinish(session):\n"
        "    if GUARD.reached and session.exitstatus == 0:\n"
        "        session.exitstatus = 1\n"
    )
    (clone / "test_reads.py").write_text(textwrap.dedent(test_body))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_test_that_reads_beside_the_checkout_fails_the_run(tmp_path):
    done = run_pytest_in_fake_checkout(
        tmp_path,
        """
        from pathlib import Path

        def test_reads_shared():
            try:  # even a swallowed refusal fails the run
                Path("../shared/sample.xml").read_text()
            except Exception:
                pass
        """,
    )
    assert done.returncode == 1, done.stdout + done.stderr


def test_a_test_that_reads_only_its_checkout_and_tmp_path_passes(tmp_path):
    done = run_pytest_in_fake_checkout(
        tmp_path,
        """
        from pathlib import Path

        def test_reads_own(tmp_path):
            (tmp_path / "x").write_text("x")
            assert Path(__file__).read_text() and (tmp_path / "x").read_text() == "x"
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def sealed_ci_run(tmp_path: Path) -> subprocess.CompletedProcess:
    """.ci/run in a clone whose `make test` reads a file beside the clone."""
    clone = tmp_path / "ci" / "clone"
    (clone / ".ci").mkdir(parents=True)
    (clone / ".ci" / "run").write_bytes((REPO / ".ci" / "run").read_bytes())
    (clone / "Makefile").write_text("test:\n\tcat ../shared/sample.xml\n")
    (tmp_path / "ci" / "shared").mkdir()
    (tmp_path / "ci" / "shared" / "sample.xml").write_text("<beside/>")
    env = {k: v for k, v in os.environ.items() if k != "INVOICE_MAILER_SEALED"}
    return subprocess.run(
        ["bash", ".ci/run"],
        cwd=clone,
        env={**env, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("make"),
    reason="CI's sealing needs root, unshare and make",
)
def test_ci_run_hides_what_lies_beside_the_clone(tmp_path):
    done = sealed_ci_run(tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "<beside/>" not in done.stdout
