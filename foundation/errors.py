"""The base of the project's exception tree, and the errors the subscriber list raises.

Every error carries *where* it happened (a file, a line, a field, an address)
and a *hint* saying what to do, so the command line can print a useful message
and exit 1 without a traceback. Library code raises these; only the CLI catches
them. Anything else escaping is a bug in this program, and shows as one.

They live here, below both the pipeline (``newsletters``) and the list
(``recipients``), because both raise them; the pipeline's own errors
(articles, rendering, delivery) are in ``newsletters.errors``.
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


class RecipientError(NewsletterError):
    """A subscriber, an import file or the subscriber store is wrong."""


class TokenError(RecipientError):
    """A confirmation or unsubscribe token is forged, tampered with or expired."""


class DatabaseError(NewsletterError):
    """The database cannot be written or reached: disk full, read-only, locked, gone."""
