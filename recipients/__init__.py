"""Subscribers and their consent: the only answer to "who may receive this, now".

Other packages use ``open_store(site)`` and, on the store, its public methods
(``subscribe``, ``confirm``, ``unsubscribe``, ``eligible``, ``count_eligible``,
``record_bounce``, ``record_complaint`` …). Delivery claims each message
through ``recipients.handover``, which judges consent again at that moment.
Links come from ``recipients.tokens.unsubscribe_url`` and ``confirm_url``.

Nothing here imports the pipeline (``newsletters``); what both need (errors,
tables, migrations, the database engine) is in ``foundation``.
"""

from __future__ import annotations

from .store import ConfirmationDue, LedgerEvent, Recipient, SignUp, Store, Subscriber
from .tokens import secret_key

__all__ = ["ConfirmationDue", "LedgerEvent", "Recipient", "SignUp", "Store", "Subscriber", "open_store"]


def open_store(site) -> Store:
    """The site's store (DATABASE_URL, else newsletter.db in the site folder), migrated to the newest schema."""
    return Store(site.database_url, secret_key=secret_key(site), double_opt_in=site.config.double_opt_in)
