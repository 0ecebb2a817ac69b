"""The staff pages of ``newsletter serve``, under ``/staff/``: sign in, the issues, review one, approve it.

``staff_blueprint(site, store)`` is registered by ``create_app``. The review
rules live in ``newsletters.review``; the issue page is the preview's own page
(``newsletters.preview``) with the review panel added.
"""

from .views import staff_blueprint

__all__ = ["staff_blueprint"]
