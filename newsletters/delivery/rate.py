"""One rate limit shared by every connection of a send: messages per second and per hour.

Providers state limits as "N messages per second" and "M per hour" for the
account, not per connection, so all worker threads draw from one limiter.
The per-second limit spaces handovers evenly (a slot every 1/rate seconds, no
bursts that a relay would answer with 421); the hourly one is a sliding window
seeded from the ledger, so stopping and resuming a send cannot exceed it.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime
from typing import Callable, Iterable


class RateLimiter:
    """``acquire()`` blocks until the next handover is allowed; thread-safe.

    ``clock`` and ``sleep`` default to the real ones; a test passes a fake pair
    to check the schedule without waiting for it.
    """

    def __init__(
        self,
        per_second: float | None = None,
        per_hour: int | None = None,
        *,
        recent: Iterable[float] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ):
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive")
        if per_hour is not None and per_hour <= 0:
            raise ValueError("per_hour must be positive")
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self._total = (self.interval, per_hour)  # the configured limits, before any share()
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()
        # Times (on ``clock``) of the handovers in the last hour, oldest first; at most per_hour kept.
        self._window: collections.deque[float] = collections.deque(sorted(recent)[-per_hour:] if per_hour else ())

    @classmethod
    def with_history(cls, per_second, per_hour, handed_at: Iterable[datetime], **kw) -> "RateLimiter":
        """A limiter whose hourly window already holds the handovers the ledger recorded."""
        clock = kw.get("clock", time.monotonic)
        now_mono, now_wall = clock(), time.time()
        recent = [now_mono - (now_wall - t.timestamp()) for t in handed_at]
        return cls(per_second, per_hour, recent=recent, **kw)

    def share(self, workers: int) -> None:
        """Take 1/``workers`` of the configured limits: several senders of one run hold them together.

        The hourly window keeps the handovers it already counted, so a share
        that shrinks is never exceeded by what this worker did before.
        """
        interval, per_hour = self._total
        workers = max(1, workers)
        with self._lock:
            self.interval = interval * workers
            self.per_hour = max(1, per_hour // workers) if per_hour else per_hour

    @property
    def limited(self) -> bool:
        return bool(self.interval or self.per_hour)

    def _reserve(self) -> float:
        """Take the next slot; return how long until it comes (0: now). Caller holds the lock."""
        now = self.clock()
        at = max(now, self._next)
        if self.per_hour:
            while self._window and self._window[0] <= now - 3600.0:
                self._window.popleft()
            if len(self._window) >= self.per_hour:
                at = max(at, self._window[0] + 3600.0)
                self._window.popleft()
            self._window.append(at)
        self._next = at + self.interval
        return at - now

    def wait_time(self) -> float:
        """How long an ``acquire()`` now would wait (without taking a slot)."""
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            if self.per_hour:
                live = [t for t in self._window if t > now - 3600.0]
                if len(live) >= self.per_hour:
                    at = max(at, live[0] + 3600.0)
            return at - now

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a slot. False when ``stop`` was set while waiting (that slot then goes unused)."""
        if not self.limited:
            return True
        with self._lock:
            delay = self._reserve()
        if delay <= 0:
            return True
        if self._sleep is not None:
            self._sleep(delay)
            return True
        if stop is None:
            time.sleep(delay)
            return True
        if stop.wait(delay):
            return False
        return True
