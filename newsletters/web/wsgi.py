"""The web app for a production WSGI server, e.g. ``gunicorn -w 2 -b 127.0.0.1:8080 newsletters.web.wsgi:app``.

``newsletter serve`` is enough for a small clinic behind a reverse proxy; a WSGI
server adds worker processes and graceful restarts. The site folder comes from
NEWSLETTER_SITE (default: the current folder), as for the ``newsletter`` command.
"""

from __future__ import annotations

import os

from ..config import Site
from .app import create_app

app = create_app(Site.load(os.environ.get("NEWSLETTER_SITE", ".")))
