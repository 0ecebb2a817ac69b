"""The errors of bounce intake, as ``NewsletterError`` subclasses the CLI prints as one line.

They live here rather than in ``newsletters.errors`` while that module is being
reshaped elsewhere; they may move there unchanged.
"""

from __future__ import annotations

from ..errors import NewsletterError


class MailboxError(NewsletterError):
    """The bounce mailbox could not be reached, refused the login, or has no such folder."""


class WebhookRejected(NewsletterError):
    """A relay's webhook post is not verified (forged, tampered with, stale or malformed).

    ``status`` is the HTTP status the web layer answers with: 401 when credentials
    are missing or wrong, 403 for a bad signature, 400 for a malformed post.
    """

    status = 403

    def __init__(self, message: str, *, status: int | None = None, where: str | None = None):
        super().__init__(message, where=where)
        if status is not None:
            self.status = status


class WebhookReplayed(WebhookRejected):
    """A post (or every event in it) that was already received: it must change nothing twice."""

    status = 409
