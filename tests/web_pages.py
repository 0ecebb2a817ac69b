"""A real HTTP server on 127.0.0.1 for tests that read articles and feeds from URLs (the ``local_site`` fixture)."""

from __future__ import annotations

import http.server
import threading


class LocalSite:
    """A real HTTP server on 127.0.0.1 serving fixed pages, recording each request."""

    def __init__(self):
        self.pages: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[dict] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append({"path": self.path, "user_agent": self.headers.get("User-Agent", "")})
                status, content_type, body = site.pages.get(self.path, (404, "text/html", b"<h1>Not found</h1>"))
                if status in (301, 302):
                    self.send_response(status)
                    self.send_header("Location", body.decode())
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, body: bytes, content_type: str, status: int = 200) -> str:
        self.pages[path] = (status, content_type, body)
        return self.url + path
