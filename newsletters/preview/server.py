"""The preview's HTTP server and watcher thread, and ``serve_preview`` that starts both.

The server is the standard library's ThreadingHTTPServer on the loopback
address: a staff tool for one browser needs nothing more. The page asks
``/version?after=V``, which the server holds open until a build newer than V
is published (or ``LONG_POLL_SECONDS`` pass), and reloads itself when one is:
a save shows up as soon as it is built, not at the page's next poll.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jinja2

from ..build import resolve_issue_path
from ..config import CONFIG_NAME, Site
from ..errors import ConfigError, NewsletterError
from .snapshot import PreviewBuilder, Snapshot
from .watch import fingerprint, watched_paths

DESKTOP_WIDTH = 700  # a desktop reading pane; the email itself is 600 px wide
PHONE_WIDTH = 375  # the narrowest phone screen the email is designed for
# Looking at ~20 files' modification times costs about 0.4 ms, so every 50 ms is under 1% of a core;
# it takes a save plus one settle interval to notice it (bench/preview.py measures the whole loop).
POLL_SECONDS = 0.05
SETTLE_SECONDS = 0.05  # an editor that saves in several steps has finished when nothing moved for this long
LONG_POLL_SECONDS = 25.0  # under the usual 30 s idle timeouts of browsers and proxies

ASSETS_DIR = Path(__file__).with_name("assets")
# The page runs only its own script; the e-mail in its frames runs none (and may be framed only here).
PREVIEW_PAGE_CSP = "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
EMAIL_CSP = "script-src 'none'; object-src 'none'; frame-ancestors 'self'"
ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def page_environment(*extra_dirs: Path) -> jinja2.Environment:
    """The page's templates; ``extra_dirs`` come first, so a page may extend ``page.html`` (the staff pages do)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([*extra_dirs, ASSETS_DIR]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _json_for_script(data) -> str:
    """JSON that is safe inside a <script type="application/json"> element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_context(snapshot: Snapshot, site_root: Path, *, base: str, live: bool) -> dict:
    """What ``page.html`` needs: ``base`` prefixes its links, ``live`` says the server watches the files."""
    try:
        issue_label = os.path.relpath(snapshot.issue_path, site_root)
    except ValueError:
        issue_label = str(snapshot.issue_path)
    return dict(
        s=snapshot,
        base=base,
        live=live,
        issue_label=issue_label,
        site_root=str(site_root),
        desktop_width=DESKTOP_WIDTH,
        phone_width=PHONE_WIDTH,
        header=dict((name.lower(), value) for name, value in snapshot.headers),
        findings_json=_json_for_script([f.to_json() for f in snapshot.findings]),
        open_findings=[f for f in snapshot.findings if not f.accepted_reason],
        accepted_findings=[f for f in snapshot.findings if f.accepted_reason],
    )


class _Handler(BaseHTTPRequestHandler):
    server: "_PreviewHTTPServer"
    server_version = "newsletter-preview"
    # One request per connection: no idle keep-alive thread keeps answering after shutdown().
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the name is the stdlib's
        pass  # staff need the page, not an access log

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _host_allowed(self) -> bool:
        """Refuse requests for other host names, so a web page cannot read the preview by DNS rebinding."""
        host = self.headers.get("Host", "")
        name = urlsplit(f"//{host}").hostname or ""
        return name in ("127.0.0.1", "localhost", "::1")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"preview answers only on 127.0.0.1\n", "text/plain")
            return
        preview = self.server.preview
        snapshot = preview.snapshot
        path = urlsplit(self.path).path
        email_policy = {"Content-Security-Policy": EMAIL_CSP}
        if path == "/":
            body = preview.render_page(snapshot).encode("utf-8")
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", {"Content-Security-Policy": PREVIEW_PAGE_CSP})
        elif path == "/version":
            after = parse_qs(urlsplit(self.path).query).get("after", [""])[0]
            if after:
                snapshot = preview.wait_for_newer(after, LONG_POLL_SECONDS)
            body = json.dumps({"version": snapshot.version, "ok": snapshot.ok}).encode()
            self._send(HTTPStatus.OK, body, "application/json")
        elif path == "/email.html" and snapshot.ok:
            self._send(HTTPStatus.OK, snapshot.html.encode("utf-8"), "text/html; charset=utf-8", email_policy)
        elif path == "/web.html" and snapshot.ok:
            self._send(HTTPStatus.OK, snapshot.web_html.encode("utf-8"), "text/html; charset=utf-8", email_policy)
        elif path == "/sample.eml" and snapshot.ok:
            self._send(HTTPStatus.OK, snapshot.eml, "message/rfc822", {
                "Content-Disposition": 'attachment; filename="sample.eml"',
            })
        elif path.startswith("/assets/") and "/" not in path[len("/assets/"):]:
            asset = ASSETS_DIR / path[len("/assets/"):]
            if asset.suffix in ASSET_TYPES and asset.is_file():
                self._send(HTTPStatus.OK, asset.read_bytes(), ASSET_TYPES[asset.suffix])
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")


class _PreviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    preview: "PreviewServer"


class PreviewServer:
    """A running preview: the HTTP server and the watcher, each in its own thread.

    ``url`` is where to point a browser; ``shutdown()`` stops both threads and
    closes the socket; ``wait()`` blocks until then (the command line's Ctrl-C).
    """

    def __init__(self, site_root: Path, issue_path: Path, host: str, port: int, *, poll_interval: float, checks: bool):
        self.site_root = site_root
        self.issue_path = issue_path
        self.poll_interval = poll_interval
        server_class = type("PreviewHTTPServer", (_PreviewHTTPServer,), {"address_family": _address_family(host)})
        self.builder = PreviewBuilder(site_root, issue_path, checks=checks)
        self._page = page_environment().get_template("page.html")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)  # notified when a new snapshot is published
        try:  # the port first: a taken one should not cost a build to find out
            self._httpd = server_class((host, port), _Handler)
        except OSError as exc:
            raise NewsletterError(
                f"cannot listen on port {port}: {exc.strerror or exc}",
                where=f"{host}:{port}",
                hint="pass another port with --port, or stop the program using this one",
            ) from None
        self._httpd.preview = self
        self._watch = fingerprint(watched_paths(site_root, issue_path))
        self._snapshot = self._with_watch_count(self.builder.build())
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="preview-http", daemon=True),
            threading.Thread(target=self._watch_loop, name="preview-watch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # The server_address the socket really has (port 0 picks a free port).
    @property
    def server_address(self) -> tuple:
        return self._httpd.socket.getsockname()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def rebuild(self) -> Snapshot:
        """Build now and publish the result; the watcher calls this after every change."""
        snapshot = self._with_watch_count(self.builder.build())
        with self._published:
            self._snapshot = snapshot
            self._published.notify_all()
        return snapshot

    def wait_for_newer(self, version: str, timeout: float) -> Snapshot:
        """The current snapshot once its version differs from ``version``, or after ``timeout`` (or shutdown)."""
        with self._published:
            self._published.wait_for(lambda: self._snapshot.version != version or self._stop.is_set(), timeout=timeout)
            return self._snapshot

    def _with_watch_count(self, snapshot: Snapshot) -> Snapshot:
        return Snapshot(**{**snapshot.__dict__, "watched": len(self._watch)})

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            current = fingerprint(watched_paths(self.site_root, self.issue_path))
            if current == self._watch:
                continue
            # Let an editor finish writing (some save in several steps) before building.
            while not self._stop.wait(SETTLE_SECONDS):
                settled = fingerprint(watched_paths(self.site_root, self.issue_path))
                if settled == current:
                    break
                current = settled
            self._watch = current
            self.rebuild()

    def render_page(self, snapshot: Snapshot) -> str:
        return self._page.render(**page_context(snapshot, self.site_root, base="/", live=True))

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def shutdown(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with self._published:  # let waiting /version requests answer now
            self._published.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "PreviewServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def _address_family(host: str):
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ConfigError(
            f"the preview serves on the loopback address only, not {host!r}",
            hint="use 127.0.0.1; the preview shows unsent content and is meant for this computer",
        )
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def serve_preview(
    site: Site | str | os.PathLike,
    issue_path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    poll_interval: float = POLL_SECONDS,
    checks: bool = True,
) -> PreviewServer:
    """Listen on ``host:port``, build ISSUE once, then serve it and rebuild on every change.

    ``site`` may be a loaded Site or a site folder: given a folder, a broken
    ``newsletter.toml`` is shown in the page rather than refused, so staff can
    start the preview and fix the file while watching. Returns after the first
    build, with the server and watcher running in threads; call ``shutdown()``
    on the result to stop. ``port=0`` picks a free port.
    """
    if isinstance(site, Site):
        site_root = site.root
    else:
        site_root = Path(site).resolve()
        if not (site_root / CONFIG_NAME).is_file():
            Site.load(site_root)  # raises the usual "no newsletter.toml here" error
    issue = resolve_issue_path(site_root, issue_path).resolve()
    return PreviewServer(site_root, issue, host, port, poll_interval=poll_interval, checks=checks)
