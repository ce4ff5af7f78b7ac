"""When to try again: tenacity's quick in-process tries, the durable deferral schedule, and
the provider's limits on how fast messages may go (smtp.rate).

Two tiers, as docs/DESIGN.md's failure table says: a few quick tries for a transient failure (a
421, a refused connection), then the delivery is `deferred` in the ledger with a backoff that
doubles from retry.backoff_min to retry.backoff_max, so that waiting survives a restart. The
rate limits are counted from the ledger's sent times, so they survive a restart too.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from invoice_mailer.config.model import RateConfig, RetryConfig
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.ledger import deliveries
from invoice_mailer.ledger.database import Ledger

log = logging.getLogger(__name__)

# The quick tries never hold the queue longer than this, whatever attempts_now says: beyond
# it the durable deferral (which lets other deliveries go first) is the better tool.
QUICK_WINDOW = 300.0
# 2 s, 4 s, 8 s … up to 30 s, plus up to 2 s of jitter (wait_exponential_jitter spells its first
# argument differently across tenacity 8 and 9; this sum means the same in both).
QUICK_WAIT = wait_exponential(multiplier=2, max=30) + wait_random(0, 2)
JITTER = 0.2  # ±20 % on the durable backoff: many deferred rows do not all wake together
RATE_WINDOWS = (("per_minute", 60.0), ("per_hour", 3600.0), ("per_day", 86400.0))


class Stopping(Exception):
    """The service is stopping: the wait was abandoned and the delivery stays due."""


RetryFactory = Callable[[], Retrying]


def quick_retry_policy(
    retry: RetryConfig, stop: threading.Event, wait: wait_base | None = None
) -> RetryFactory:
    """The in-process tries for transient SMTP failures, as a factory (Retrying is not
    thread-safe). The sleep is `stop.wait`, so SIGTERM ends it at once; tests pass a zero wait."""

    def interruptible_sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopping()

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, SmtpFailure) and exc.kind == "transient"

    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; quick retry %d of %d in %.1f s",
            failure, state.attempt_number, retry.attempts_now - 1, pause,
        )  # fmt: skip

    return lambda: Retrying(
        stop=(
            stop_after_attempt(retry.attempts_now)
            | stop_after_delay(QUICK_WINDOW)
            | stop_when_event_set(stop)
        ),
        wait=wait if wait is not None else QUICK_WAIT,
        retry=retry_if_exception(transient),
        reraise=True,
        sleep=interruptible_sleep,
        before_sleep=before_sleep,
    )


def deferrals_so_far(attempts: int, attempts_now: int) -> int:
    """How many durable deferrals came before, from the attempts made (one round each)."""
    return max(0, math.ceil(attempts / max(attempts_now, 1)) - 1)


def backoff(retry: RetryConfig, deferrals: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next round: backoff_min doubling per deferral up to backoff_max, with
    ±20 % jitter, never outside [backoff_min, backoff_max]."""
    base = retry.backoff_min * 2.0 ** min(max(deferrals, 0), 64)
    jittered = base * (1 - JITTER + 2 * JITTER * rng())
    return max(retry.backoff_min, min(retry.backoff_max, jittered))


def has_rate_limit(rate: RateConfig) -> bool:
    """Whether any of smtp.rate's windows is limited."""
    return any(getattr(rate, name) for name, _seconds in RATE_WINDOWS)


def rate_limit_wait(rate: RateConfig, ledger: Ledger, now: float) -> tuple[float, str]:
    """Seconds to wait before the next message may go, and which limit says so."""
    longest, which = 0.0, ""
    for name, seconds in RATE_WINDOWS:
        limit = getattr(rate, name)
        if not limit:
            continue
        # The limit-th most recent message inside the window: while it is in there, wait.
        sent_at = deliveries.nth_latest_sent_at(ledger.db, now - seconds, limit)
        if sent_at is not None:
            wait = sent_at + seconds - now
            if wait > longest:
                longest, which = wait, f"{name.replace('_', ' ')}: {limit}"
    return longest, which
