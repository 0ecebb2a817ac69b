"""Subscribers and their consent: the only answer to "who may receive this issue".

Other packages use ``open_store(site)`` and, on the store, ``eligible()``,
``count_eligible()``, ``record_bounce()``, ``record_complaint()`` and ``engine``;
links come from ``recipients.tokens.unsubscribe_url`` and ``confirm_url``.
"""

from __future__ import annotations

from .store import LedgerEvent, Recipient, Store, Subscriber

__all__ = ["LedgerEvent", "Recipient", "Store", "Subscriber", "open_store"]


def open_store(site) -> Store:
    """The site's store (DATABASE_URL, else newsletter.db in the site folder), migrated to the newest schema."""
    from .tokens import secret_key

    return Store(site.database_url, secret_key=secret_key(site), double_opt_in=site.config.double_opt_in)
