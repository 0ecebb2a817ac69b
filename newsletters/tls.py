"""The one way this program makes a TLS client context: certificates and host names always verified.

Used by the SMTP client, the bounce mailbox (IMAP/POP3) and the SNS certificate
fetch. ``cafile`` adds a private CA to the system's trusted ones (a relay or a
mail server with its own CA); there is no switch to turn verification off.
"""

from __future__ import annotations

import ssl

from .errors import ConfigError


def verified_tls_context(cafile: str | None = None, setting: str = "the CA file") -> ssl.SSLContext:
    """A client context that verifies; ``setting`` names where ``cafile`` came from, for the error."""
    context = ssl.create_default_context()
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load {setting}: {exc}", where=cafile, hint="give a PEM file of CA certificates"
            ) from None
    return context
