"""The review's error: a NewsletterError, so the CLI prints one ``error:`` line and exits 1."""

from __future__ import annotations

from ..errors import NewsletterError


class ReviewError(NewsletterError):
    """A staff account or an approval is missing or wrong (also: `send` without the approvals it needs)."""
