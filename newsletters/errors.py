"""The pipeline's errors, on the base tree in ``foundation.errors``.

Every error carries *where* it happened and a *hint* saying what to do; the
command line prints it as one line and exits 1. The base classes are re-exported
here so pipeline code imports every error from one place.
"""

from __future__ import annotations

from foundation.errors import ConfigError, NewsletterError, RecipientError, TokenError

__all__ = [
    "ArticleError", "CheckFailed", "ConfigError", "DeliveryError", "HeaderInjectionError", "IssueFileError",
    "NewsletterError", "RecipientError", "RenderError", "TokenError", "TransportError",
]


class ArticleError(NewsletterError):
    """An article source cannot be read or understood."""


class IssueFileError(NewsletterError):
    """An issue file is missing, is not valid TOML, or has a bad field."""


class RenderError(NewsletterError):
    """A template or the MJML compiler failed."""


class HeaderInjectionError(NewsletterError):
    """Data meant for a mail header holds CR, LF, NUL or an encoded-word."""


class DeliveryError(NewsletterError):
    """Sending could not start or could not go on."""


class TransportError(DeliveryError):
    """The SMTP server or the outbox could not be reached or refused us."""


class CheckFailed(NewsletterError):
    """The pre-send checks found errors that the issue file does not accept."""
