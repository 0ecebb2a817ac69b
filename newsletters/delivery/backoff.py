"""Whole-send back-off: when the server keeps saying "later", every connection waits.

Per-message retries (``retry.RetryPolicy``) space out the attempts for one
address, but a server that answers 451 to everyone would still see every
address tried once, at full speed: about a thousand refused RCPTs a second,
which providers read as abuse. So the pipe also watches the last few outcomes
as a whole. When temporary refusals (4xx, 421, refused or reset connections)
make up most of a recent window, the send pauses: no connection hands anything
over until the pause ends; then a single probe message goes out, and only when
the server accepts it does the send resume at its configured pace. A refused
probe doubles the pause (up to ``max_pause``). Once the pauses add up to
``give_up_after`` seconds, the session gives up and leaves the rest deferred for
a later run.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable

NORMAL, PROBE, STOP = "normal", "probe", "stop"


@dataclass(frozen=True)
class BackoffPolicy:
    window: int = 20  # outcomes looked at
    min_outcomes: int = 8  # fewer than this never starts a pause
    threshold: float = 0.8  # share of temporary refusals that starts one
    first_pause: float = 1.0  # seconds
    max_pause: float = 60.0
    give_up_after: float = 900.0  # seconds paused in all, within one session

    def next_pause(self, previous: float) -> float:
        return self.first_pause if previous <= 0 else min(self.max_pause, previous * 2)


class SendBackoff:
    """Shared by every worker of one pipe: ``wait_turn`` before a handover, ``record`` after it."""

    def __init__(self, policy: BackoffPolicy = BackoffPolicy(), clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.clock = clock
        self._cond = threading.Condition()
        self._recent: collections.deque[bool] = collections.deque(maxlen=policy.window)
        self._paused_until: float | None = None
        self._pause = 0.0
        self._paused_total = 0.0
        self._probe_out = False
        self.reason = ""
        self.pauses = 0
        self.gave_up = False

    # -- what the progress line shows -----------------------------------------------
    def paused_for(self) -> float | None:
        """Seconds left in the current pause (0 while a probe is out); None when not paused."""
        with self._cond:
            if self._paused_until is None:
                return None
            return max(0.0, self._paused_until - self.clock())

    # -- workers ------------------------------------------------------------------
    def wait_turn(self, stop: threading.Event) -> str:
        """Block while paused; ``normal`` to send as usual, ``probe`` to send the one probe, ``stop`` to end."""
        with self._cond:
            while True:
                if stop.is_set() or self.gave_up:
                    return STOP
                if self._paused_until is None:
                    return NORMAL
                left = self._paused_until - self.clock()
                if left <= 0 and not self._probe_out:
                    self._probe_out = True
                    return PROBE
                self._cond.wait(min(0.25, left) if left > 0 else 0.25)

    def record(self, temporary: bool, reason: str = "", probe: bool = False) -> None:
        """One handover's outcome: ``temporary`` for a 4xx or a lost connection, False when the server answered."""
        with self._cond:
            if probe:
                self._probe_out = False
                if temporary:
                    self._start_pause(reason)
                else:
                    self._resume()
                self._cond.notify_all()
                return
            if self._paused_until is not None:
                return  # a message that was in flight when the pause began: the probe decides
            self._recent.append(temporary)
            refused = sum(self._recent)
            if len(self._recent) >= self.policy.min_outcomes and refused >= self.policy.threshold * len(self._recent):
                self._start_pause(reason)

    def cancel_probe(self) -> None:
        """The probe turn was not used (nothing sent): another worker may take it."""
        with self._cond:
            self._probe_out = False
            self._cond.notify_all()

    def _start_pause(self, reason: str) -> None:
        self._pause = self.policy.next_pause(self._pause)
        if self._paused_total + self._pause > self.policy.give_up_after:
            self.gave_up = True
        self._paused_total += self._pause
        self._paused_until = self.clock() + self._pause
        self.reason = reason
        self.pauses += 1
        self._recent.clear()
        self._cond.notify_all()

    def _resume(self) -> None:
        self._paused_until = None
        self._pause = 0.0
        self.reason = ""
        self._recent.clear()
