"""When the worker thread must make a pass: pure decisions on monotonic times, no threads.

A pass (routing, building ahead, and twice a second at most the housekeeping: sessions,
alerts, archive) is needed when something woke the worker, when another connection committed
(the sender, a `retry` or `flush`), when a timer is due (a document's pair_wait, the open
session's closing), when housekeeping was owed, or every `idle_pass` for what only time changes.
Between passes the worker sleeps as long as this says: idle, that costs almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerSchedule:
    housekeeping_interval: float = 0.5
    idle_pass: float = 5.0
    housekeeping_at: float = 0.0  # no housekeeping before this (throttle)
    owed: bool = False  # a pass skipped housekeeping: one is owed at housekeeping_at
    session_due: float | None = None  # when the open session wants a look
    pair_due: float | None = None  # when a document stops waiting for its pair
    idle_until: float = 0.0  # the next pass even if nothing happens

    def pass_needed(self, now: float, woken: bool, changed: bool) -> bool:
        return woken or changed or now >= self.idle_until or any(now >= t for t in self._timers())

    def begin_pass(self, now: float, pair_wait: float | None) -> bool:
        """Start a pass; True when it should include housekeeping."""
        self.idle_until = now + self.idle_pass
        self.pair_due = None if pair_wait is None else now + pair_wait
        self.owed = now < self.housekeeping_at
        if not self.owed:
            self.housekeeping_at = now + self.housekeeping_interval
        return not self.owed

    def housekept(self, now: float, session_wait: float | None) -> None:
        self.session_due = None if session_wait is None else now + session_wait

    def sleep(self, now: float, longest: float = 1.0) -> float:
        """How long the worker may wait for a wake-up before looking again."""
        return max(0.01, min([now + longest, *self._timers()]) - now)

    def _timers(self) -> list[float]:
        timers = [] if self.pair_due is None else [self.pair_due]
        if self.owed:
            timers.append(self.housekeeping_at)
        elif self.session_due is not None:
            timers.append(max(self.session_due, self.housekeeping_at))
        return timers
