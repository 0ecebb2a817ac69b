"""Delivery settings from the site's environment, checked once before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .backoff import BackoffPolicy
from .retry import RetryPolicy

MAX_CONNECTIONS = 50


@dataclass(frozen=True)
class DeliverySettings:
    connections: int = 4
    per_second: float | None = None
    per_hour: int | None = None
    retry: RetryPolicy = RetryPolicy()
    backoff: BackoffPolicy = BackoffPolicy()

    @classmethod
    def from_site(cls, site, *, outbox: bool = False) -> "DeliverySettings":
        where = "environment/.env"
        connections = site.int_setting("SMTP_CONNECTIONS", 4)
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise ConfigError(f"SMTP_CONNECTIONS must be between 1 and {MAX_CONNECTIONS}, not {connections}", where=where)
        per_second = site.float_setting("SEND_RATE", 0.0) or None
        if per_second is not None and per_second < 0:
            raise ConfigError(f"SEND_RATE must be a positive number of messages per second, not {per_second}", where=where)
        per_hour = site.int_setting("SEND_MAX_PER_HOUR", 0) or None
        if per_hour is not None and per_hour < 0:
            raise ConfigError(f"SEND_MAX_PER_HOUR must be a positive whole number, not {per_hour}", where=where)
        attempts = site.int_setting("SEND_MAX_ATTEMPTS", RetryPolicy.max_attempts)
        if not 1 <= attempts <= 20:
            raise ConfigError(f"SEND_MAX_ATTEMPTS must be between 1 and 20, not {attempts}", where=where)
        delay = site.float_setting("SEND_RETRY_DELAY", RetryPolicy.base)
        if delay < 0:
            raise ConfigError(f"SEND_RETRY_DELAY must not be negative, not {delay}", where=where)
        pause_max = site.float_setting("SEND_PAUSE_MAX", BackoffPolicy.max_pause)
        pause_limit = site.float_setting("SEND_PAUSE_LIMIT", BackoffPolicy.give_up_after)
        if pause_max <= 0 or pause_limit < 0:
            raise ConfigError(
                f"SEND_PAUSE_MAX must be positive and SEND_PAUSE_LIMIT not negative, not {pause_max} and {pause_limit}",
                where=where,
            )
        return cls(
            # A maildir is a local folder: one writer is as fast as several.
            connections=1 if outbox else connections,
            per_second=per_second,
            per_hour=per_hour,
            retry=RetryPolicy(max_attempts=attempts, base=delay, cap=max(delay, RetryPolicy.cap)),
            backoff=BackoffPolicy(max_pause=pause_max, give_up_after=pause_limit),
        )

    def duration(self, messages: int) -> float | None:
        """Roughly how long the limits alone make ``messages`` take; None when nothing limits them."""
        if messages <= 0 or not (self.per_second or self.per_hour):
            return None
        by_rate = messages / self.per_second if self.per_second else 0.0
        by_hour = ((messages - 1) // self.per_hour) * 3600.0 if self.per_hour else 0.0
        return max(by_rate, by_hour)

    def describe(self) -> str:
        limits = []
        if self.per_second:
            limits.append(f"{self.per_second:g}/s")
        if self.per_hour:
            limits.append(f"{self.per_hour}/hour")
        rate = ", at most " + " and ".join(limits) if limits else ", no rate limit"
        return f"{self.connections} connection{'s' if self.connections != 1 else ''}{rate}"
