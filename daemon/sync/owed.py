"""When an owed sync is retried (README, "Recovering by itself").

A sync is *owed* when the cache was empty or stale at startup, when the last
sync failed, or when a full sync was cut short and its partial slot can be
resumed -- and the daemon syncs on its own at all (``sync.interval`` or
``sync.stale_after`` is on). The daemon keeps one `RetryPlan`, tells it how
each attempt ended, and starts the owed sync when `due` says so. Pure: no I/O,
times are unix seconds passed in.

Backoff: 15 s after the first failure, doubling up to 15 min, and never longer
than ``sync.interval``. A rejected token is not retried on that clock: the next
try waits for the interval (or for a reload that changes the token).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plex.retry import Backoff

FIRST_DELAY = 15.0  # seconds after the first failed attempt
MAX_DELAY = 900.0  # the doubling stops here (and at sync.interval)


@dataclass
class RetryPlan:
    failures: int = 0  # failed attempts in a row
    retry_at: float | None = None  # when the owed sync runs next (None: not scheduled)
    token_rejected: bool = False  # the last attempt got HTTP 401
    reason: str | None = None  # why the sync is owed, for library.status

    def delay(self, interval: float | None) -> float:
        """The wait after ``failures`` failed attempts (capped by ``interval``)."""
        delay = Backoff(FIRST_DELAY, MAX_DELAY).delay(max(0, self.failures - 1))
        return min(delay, interval) if interval else delay

    def owe(self, reason: str, at: float) -> None:
        """A sync is owed from ``at`` on (startup, an interrupted full sync)."""
        self.reason = reason
        self.retry_at = at if self.retry_at is None else min(self.retry_at, at)

    def failed(self, reason: str, now: float, interval: float | None, *, unauthorized: bool,
               attempted_at: float | None = None) -> None:
        """An attempt (started at ``attempted_at``) failed: schedule the next one."""
        self.failures += 1
        self.reason = reason
        self.token_rejected = unauthorized
        if unauthorized:  # asking again changes nothing until the token does: the schedule's time
            self.retry_at = (attempted_at or now) + interval if interval else None
        else:
            self.retry_at = now + self.delay(interval)

    def settled(self) -> None:
        """A sync succeeded (or nothing is owed any more): forget the plan."""
        self.failures, self.retry_at, self.token_rejected, self.reason = 0, None, False, None

    def postpone(self, now: float, interval: float | None) -> None:
        """A user cancelled the owed sync: leave it to the schedule (or the user)."""
        if self.reason is not None:
            self.retry_at = now + interval if interval else None

    def plex_is_back(self, now: float) -> bool:
        """Plex answers again: an owed sync runs now (not for a rejected token). Whether it will."""
        if self.reason is None or self.token_rejected:
            return False
        self.retry_at = now
        return True

    def token_changed(self, now: float) -> None:
        """A reload brought another token: try it at once if a sync is owed."""
        if self.token_rejected:
            self.token_rejected = False
            self.retry_at = now

    def due(self, now: float) -> bool:
        return self.retry_at is not None and now >= self.retry_at

    def view(self) -> dict | None:
        """``library.status.sync_owed`` (times as unix seconds; the caller formats them)."""
        if self.reason is None:
            return None
        return {"reason": self.reason, "retry_at": self.retry_at, "attempts": self.failures,
                "token_rejected": self.token_rejected}
