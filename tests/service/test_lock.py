"""One service per state directory: the lock, and what a second `run` tells the admin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from invoice_mailer.errors import LockedError
from invoice_mailer.service.lock import acquire_lock, is_running
from tests.support.service_harness import ServiceProcess, service_config


def test_second_lock_on_the_same_state_dir_is_refused_with_the_holder(tmp_path):
    state_dir = tmp_path / "state"
    fd = acquire_lock(state_dir)
    try:
        assert is_running(state_dir)
        with pytest.raises(LockedError) as refused:
            acquire_lock(state_dir)
        assert str(refused.value) == (
            f"another invoice-mailer (pid {os.getpid()}) is already running on {state_dir}"
        )
    finally:
        os.close(fd)
    assert not is_running(state_dir)
    os.close(acquire_lock(state_dir))  # released with its descriptor: free again


def test_lock_of_a_killed_service_does_not_stay(tmp_path):
    """flock ends with the process: a crash never leaves a stale lock behind."""
    state_dir = tmp_path / "state"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from invoice_mailer.service.lock import acquire_lock; "
            "acquire_lock(pathlib.Path(sys.argv[1])); print('locked', flush=True); "
            "sys.stdin.read()",
            str(state_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            acquire_lock(state_dir)
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    os.close(acquire_lock(state_dir))


def test_second_run_on_the_same_state_dir_exits_1_with_a_clear_message(tmp_path, start_smtp_server):
    config = service_config(tmp_path, start_smtp_server("none"))
    with ServiceProcess(config) as first:
        second = subprocess.run(
            [sys.executable, "-m", "invoice_mailer", "-c", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert first.process.poll() is None  # the first one goes on
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"invoice-mailer: another invoice-mailer (pid {first.process.pid}) is already running "
        f"on {tmp_path / 'state'}"
    )
