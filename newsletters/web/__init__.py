"""The public web app of ``newsletter serve``: subscribe, confirm, unsubscribe and the issue archive.

Part of the pipeline rather than of the list because it sends mail (the
double opt-in message goes through the site's transport); it changes the
list only through the store's public methods.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
