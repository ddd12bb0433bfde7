"""Retrying with backoff: the one rule every loop that talks to Plex follows.

A `Backoff` says how long to wait before attempt ``n + 1``: ``base * 2**n``,
at most ``cap`` -- or longer when the server asked for it: a 429 or 503 answer's
``Retry-After`` (seconds or an HTTP date) is honoured, up to `MAX_RETRY_AFTER`.
It waits with its ``sleep``, which the caller injects (tests record the delays
instead of sleeping; the notification thread waits on its stop event so that a
stop is noticed at once). `call` runs a function with retries. Standard library
only, like the rest of the daemon process's side of `plex`.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar


T = TypeVar("T")

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this
_MAX_DOUBLINGS = 30  # 2**30 * base is past any cap; keeps 2**n finite however long a loop runs


def retry_after(status: int | None, headers: Mapping[str, str] | None, now: Callable[[], float] = time.time
                ) -> float | None:
    """The seconds a 429/503 answer asks us to wait (``Retry-After``), else None."""
    if status not in (429, 503) or not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        return None
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class Backoff:
    base: float  # seconds before the first retry
    cap: float  # longest wait of our own choosing
    sleep: Callable[[float], Any] = time.sleep

    def delay(self, attempt: int, asked: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based); ``asked``: a Retry-After."""
        own = min(self.cap, self.base * 2 ** min(attempt, _MAX_DOUBLINGS))
        if asked is None or not math.isfinite(asked):
            return own
        return max(own, min(asked, MAX_RETRY_AFTER))


class Retryable(Exception):
    """Raise (or subclass) this from a function given to `call` for a failure worth retrying."""

    retry_after: float | None = None


def call(fn: Callable[[], T], *, retries: int, backoff: Backoff,
         retryable: Callable[[Exception], bool] = lambda e: isinstance(e, Retryable),
         on_retry: Callable[[Exception, float], None] | None = None) -> T:
    """``fn()``, tried again up to ``retries`` times while it raises a retryable error.

    The last error is raised as it is (after ``retries + 1`` attempts). Before each
    retry, ``on_retry(error, delay)`` (e.g. to log), then ``backoff.sleep(delay)``;
    the delay honours the error's ``retry_after`` attribute when it has one.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - re-raised unless retryable
            if not retryable(exc) or attempt >= retries:
                raise
            delay = backoff.delay(attempt, getattr(exc, "retry_after", None))
            if on_retry is not None:
                on_retry(exc, delay)
            backoff.sleep(delay)
            attempt += 1
