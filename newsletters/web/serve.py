"""Running the web app for ``newsletter serve``: werkzeug's threaded server, saying nothing about itself.

werkzeug's default ``Server`` header names werkzeug's and Python's versions,
which only helps someone looking for a known hole; behind the reverse proxy the
README describes, the proxy may add its own.
"""

from __future__ import annotations

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app

SERVER_NAME = "newsletter"


class QuietRequestHandler(WSGIRequestHandler):
    """The stock handler with a bare ``Server: newsletter`` header."""

    server_version = SERVER_NAME
    sys_version = ""

    def version_string(self) -> str:
        return SERVER_NAME


def make_web_server(site, host: str, port: int, *, app=None):
    """A threaded WSGI server for ``site``'s app (not yet serving: call ``serve_forever``)."""
    return make_server(host, port, app or create_app(site), threaded=True, request_handler=QuietRequestHandler)
