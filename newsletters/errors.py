"""One exception tree for everything a user can get wrong.

Every error carries *where* it happened (a file, a line, a field, an address)
and a *hint* saying what to do, so the command line can print a useful message
and exit 1 without a traceback. Library code raises these; only the CLI catches
them. Anything else escaping is a bug in this program, and shows as one.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error meant for the user rather than for a developer."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(NewsletterError):
    """The site folder, ``newsletter.toml`` or an environment setting is wrong."""


class ArticleError(NewsletterError):
    """An article source cannot be read or understood."""


class IssueFileError(NewsletterError):
    """An issue file is missing, is not valid TOML, or has a bad field."""


class RenderError(NewsletterError):
    """A template or the MJML compiler failed."""


class HeaderInjectionError(NewsletterError):
    """Data meant for a mail header holds CR, LF, NUL or an encoded-word."""


class RecipientError(NewsletterError):
    """A subscriber, an import file or the subscriber store is wrong."""


class TokenError(RecipientError):
    """A confirmation or unsubscribe token is forged, tampered with or expired."""


class DeliveryError(NewsletterError):
    """Sending could not start or could not go on."""


class TransportError(DeliveryError):
    """The SMTP server or the outbox could not be reached or refused us."""


class CheckFailed(NewsletterError):
    """The pre-send checks found errors that the issue file does not accept."""
