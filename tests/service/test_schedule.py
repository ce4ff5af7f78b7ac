"""The worker's schedule: when a pass is needed and how long it may sleep (pure, no threads)."""

from __future__ import annotations

from invoice_mailer.service.schedule import WorkerSchedule


def test_idle_worker_sleeps_until_the_idle_pass():
    schedule = WorkerSchedule(housekeeping_interval=0.5, idle_pass=5.0)
    assert schedule.pass_needed(0.0, woken=False, changed=False)  # the first pass
    assert schedule.begin_pass(0.0, pair_wait=None)  # includes housekeeping
    schedule.housekept(0.0, session_wait=None)
    assert schedule.sleep(0.0) == 1.0
    assert not schedule.pass_needed(1.0, woken=False, changed=False)
    assert not schedule.pass_needed(4.9, woken=False, changed=False)
    assert schedule.pass_needed(5.0, woken=False, changed=False)


def test_a_wake_up_or_a_commit_elsewhere_needs_a_pass():
    schedule = WorkerSchedule()
    schedule.begin_pass(0.0, None)
    assert schedule.pass_needed(0.1, woken=True, changed=False)
    assert schedule.pass_needed(0.1, woken=False, changed=True)


def test_housekeeping_is_throttled_but_never_forgotten():
    schedule = WorkerSchedule(housekeeping_interval=0.5, idle_pass=5.0)
    assert schedule.begin_pass(0.0, None)
    assert not schedule.begin_pass(0.1, None)  # a message was sent: too soon to file it
    assert abs(schedule.sleep(0.1) - 0.4) < 1e-9  # ... but the owed pass comes at 0.5
    assert not schedule.pass_needed(0.4, woken=False, changed=False)
    assert schedule.pass_needed(0.5, woken=False, changed=False)
    assert schedule.begin_pass(0.5, None)


def test_pair_wait_and_session_closing_are_timers():
    schedule = WorkerSchedule(housekeeping_interval=0.5, idle_pass=5.0)
    schedule.begin_pass(0.0, pair_wait=1.5)
    schedule.housekept(0.0, session_wait=3.0)
    assert schedule.sleep(0.0) == 1.0  # never longer than a second
    assert abs(schedule.sleep(1.2) - 0.3) < 1e-9
    assert not schedule.pass_needed(1.4, woken=False, changed=False)
    assert schedule.pass_needed(1.5, woken=False, changed=False)  # the PDF stops waiting
    schedule.begin_pass(1.5, pair_wait=None)
    assert not schedule.pass_needed(2.9, woken=False, changed=False)
    assert schedule.pass_needed(3.0, woken=False, changed=False)  # the session closes
