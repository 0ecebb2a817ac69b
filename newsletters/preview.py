"""The staff preview: one issue, served on the loopback address, rebuilt on every save.

Marketing edits an issue file, an article or a template and wants to see the
result the way a subscriber will, before anything is sent. So the preview shows
the *sample message* (``sample.eml`` from the build, with the sample recipient's
name and links filled in) rather than the raw build with placeholders: the HTML
part at a desktop and a phone width side by side, the plain-text part, and the
message headers. The pre-send findings sit next to it, pointing at the place in
the email they are about.

Change detection polls modification times a few times a second. That needs no
extra dependency, works on every file system (including network shares and
editors that save by renaming), and a site folder holds a few dozen files at
most. The page polls ``/version`` and reloads itself when a rebuild finished.

A broken change (bad TOML, a template error, an unreadable article) must not
stop the server: the error goes into the page, and the next save that fixes it
brings the issue back. Each build goes into a private temporary folder that is
removed right after it was read, so the preview never leaves half-written files
in ``build/``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import email
import email.policy
import html as html_lib
import ipaddress
import json
import os
import re
import secrets
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import jinja2

from .config import CONFIG_NAME, Site
from .errors import ConfigError, IssueFileError, NewsletterError
from .issues import load_issue

DESKTOP_WIDTH = 700  # a desktop reading pane; the email itself is 600 px wide
PHONE_WIDTH = 375  # the narrowest phone screen the email is designed for
POLL_SECONDS = 0.4

ASSETS_DIR = Path(__file__).with_name("preview_assets")
ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

# Titles staff read above an error; the class says which file to look at.
ERROR_TITLES = {
    "ConfigError": "The site settings (newsletter.toml or .env) have a problem",
    "IssueFileError": "The issue file has a problem",
    "ArticleError": "An article could not be read",
    "RenderError": "A template could not be rendered",
    "HeaderInjectionError": "A header value is not allowed",
}

# The part of a start tag after which an attribute can be inserted safely.
_WHERE_LINE = re.compile(r"^(.+?):(\d+)$")
_MESSAGE_LINE = re.compile(r"\bline (\d+)\b")
_VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<([a-zA-Z][a-zA-Z0-9:-]*)", re.DOTALL)


def package_templates_dir() -> Path | None:
    """The default templates shipped with the package (a site may override them)."""
    try:
        import templates  # the top-level package of default templates

        return Path(templates.__file__).resolve().parent
    except (ImportError, TypeError):
        return None


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class BuildProblem:
    """Why the latest build failed, in the words the page shows."""

    title: str
    message: str
    where: str | None = None
    hint: str | None = None
    detail: str | None = None  # a traceback, only for errors that are bugs in this program
    excerpt: tuple[tuple[int, str, bool], ...] = ()  # (line number, text, is the line named) around the error

    @classmethod
    def from_exception(cls, exc: BaseException) -> "BuildProblem":
        if isinstance(exc, NewsletterError):
            title = ERROR_TITLES.get(type(exc).__name__, "The issue could not be built")
            return cls(
                title=title,
                message=exc.message,
                where=exc.where,
                hint=exc.hint,
                excerpt=source_excerpt(exc.where, exc.message),
            )
        return cls(
            title="Unexpected error while building (a bug in newsletter; please report it)",
            message=f"{type(exc).__name__}: {exc}",
            detail="".join(traceback.format_exception(exc)),
        )


def source_excerpt(where: str | None, message: str, context: int = 2) -> tuple[tuple[int, str, bool], ...]:
    """The lines around the one an error names (``file:12``, or a file and "line 12" in the message).

    Staff then see the typo itself, not only its coordinates.
    """
    if not where:
        return ()
    match = _WHERE_LINE.match(where)
    if match:
        path, line = Path(match.group(1)), int(match.group(2))
    else:
        found = _MESSAGE_LINE.search(message)
        if not found:
            return ()
        path, line = Path(where), int(found.group(1))
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    if not 1 <= line <= len(lines):
        return ()
    first, last = max(1, line - context), min(len(lines), line + context)
    return tuple((n, lines[n - 1], n == line) for n in range(first, last + 1))


@dataclass(frozen=True)
class FindingView:
    """A pre-send finding as the page lists it; ``marked`` says the HTML copy carries its marker."""

    number: int
    rule: str
    severity: str
    where: str
    text: str
    fix: str
    accepted_reason: str | None
    html_line: int | None
    marked: bool = False

    def to_json(self) -> dict:
        return {"number": self.number, "text": self.text, "marked": self.marked}


@dataclass(frozen=True)
class Snapshot:
    """Everything one build produced for the page; replaced whole, never changed."""

    version: str
    issue_path: Path
    built_at: dt.datetime
    seconds: float
    problem: BuildProblem | None = None
    subject: str = ""
    preheader: str = ""
    html: str = ""  # the sample message's HTML part, with finding markers added
    text: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    web_html: str = ""
    eml: bytes = b""
    warnings: list[str] = field(default_factory=list)
    findings: list[FindingView] = field(default_factory=list)
    checks_ran: bool = False
    checks_note: str = ""
    watched: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


# --------------------------------------------------------------------------- building


def read_sample_message(eml: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """The HTML part, the text part and the headers of the sample message, decoded."""
    message = email.message_from_bytes(eml, policy=email.policy.default)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    if html_part is None or text_part is None:
        raise NewsletterError(
            "the sample message lacks an HTML or a plain-text part",
            where="sample.eml",
            hint="the build must write multipart/alternative with both parts",
        )
    headers = [(name, str(value)) for name, value in message.items()]
    return html_part.get_content(), text_part.get_content(), headers


def _start_tags(html: str) -> list[tuple[int, int]]:
    """(offset just after the tag name, offset of the tag's ``<``) of every start tag outside comments.

    Void elements (``<br>``, ``<img>``) hold no text, so they are never what a finding is about.
    """
    tags = []
    for match in _TAG_OR_COMMENT.finditer(html):
        if match.group(1) and match.group(1).lower() not in _VOID_ELEMENTS:
            tags.append((match.end(1), match.start()))
    return tags


def _in_text(html: str, pos: int) -> bool:
    """True when ``pos`` is in text content, not inside a tag or an attribute."""
    return html.rfind(">", 0, pos) >= html.rfind("<", 0, pos)


def mark_finding_lines(html: str, findings: list[tuple[int, int, str]]) -> tuple[str, set[int]]:
    """Tag the element each finding is about so the page can outline it.

    ``findings`` holds (number, line of ``email.html``, the text that triggered
    it). On that line the element is the start tag before the finding's text
    (a line of MJML output often holds several elements), else the first start
    tag on the line, else the nearest one above it. Tags inside comments (the
    Outlook-only tables) are skipped: they are not shown. Only an attribute is
    added, right after a tag name, so line numbers and everything else in the
    copy stay as built. Returns the new HTML and the numbers of the findings marked.
    """
    if not findings:
        return html, set()
    line_starts = [0] + [m.end() for m in re.finditer("\n", html)]
    tags = _start_tags(html)
    tag_ends = [end for end, _ in tags]
    lowered = html.lower()
    chosen: dict[int, list[int]] = {}  # insertion offset -> finding numbers
    for number, line, text in findings:
        index = min(max(line, 1), len(line_starts)) - 1
        begin = line_starts[index]
        stop = line_starts[index + 1] if index + 1 < len(line_starts) else len(html)
        at = None
        for needle in {text.strip().lower(), html_lib.escape(text.strip()).lower()} - {""}:
            pos = lowered.find(needle, begin, stop)
            while pos >= 0 and not _in_text(html, pos):
                pos = lowered.find(needle, pos + 1, stop)
            if pos >= 0:
                at = pos
                break
        if at is None:
            on_line = [end for end, tag_start in tags if begin <= tag_start < stop]
            at = on_line[0] if on_line else begin
        before = bisect.bisect_right(tag_ends, at) - 1
        if before >= 0:
            chosen.setdefault(tag_ends[before], []).append(number)
    marked: set[int] = set()
    pieces, last = [], 0
    for offset in sorted(chosen):
        numbers = sorted(set(chosen[offset]))
        pieces += [html[last:offset], f' data-nl-finding="{" ".join(map(str, numbers))}"']
        last = offset
        marked.update(numbers)
    pieces.append(html[last:])
    return "".join(pieces), marked


def _load_checks() -> Callable | None:
    try:
        from .checks import run_checks  # written alongside; the preview works without it
    except ImportError:
        return None
    return run_checks


def _findings(site: Site, result) -> tuple[list[FindingView] | None, str]:
    """The findings (None when the checks did not run) and a note on how they were run."""
    run_checks = _load_checks()
    if run_checks is None:
        return None, "Pre-send checks are not available in this version."
    try:
        report = run_checks(site, result, spamassassin=False)
    except NewsletterError as exc:
        return None, f"The pre-send checks could not run: {exc}"
    except Exception as exc:  # a bug in a check must not hide the preview
        return None, f"The pre-send checks failed ({type(exc).__name__}: {exc}); `newsletter check` shows more."
    views = [
        FindingView(
            number=n,
            rule=f.rule,
            severity=f.severity,
            where=f.where,
            text=f.text,
            fix=f.fix,
            accepted_reason=f.accepted_reason,
            html_line=f.html_line,
        )
        for n, f in enumerate(report.findings, 1)
    ]
    return views, "SpamAssassin is not run in the preview (it takes seconds); `newsletter check ISSUE` runs it."


class PreviewBuilder:
    """Builds the issue into a private temporary folder and turns the result into a Snapshot."""

    def __init__(self, site_root: Path, issue_path: Path, *, checks: bool = True):
        self.site_root = site_root
        self.issue_path = issue_path
        self.checks = checks
        self._token = secrets.token_hex(4)  # a restarted server never reuses an old version
        self._count = 0

    def _next_version(self) -> str:
        self._count += 1
        return f"{self._token}-{self._count}"

    def build(self) -> Snapshot:
        from .build import build_issue  # imported late: the preview page must load even if it is broken

        started = time.perf_counter()
        try:
            site = Site.load(self.site_root)
            with tempfile.TemporaryDirectory(prefix="newsletter-preview-") as out_dir:
                result = build_issue(site, self.issue_path, out_dir=Path(out_dir))
                eml = Path(result.paths["sample.eml"]).read_bytes()
                web_html = Path(result.paths["web.html"]).read_text(encoding="utf-8")
            html, text, headers = read_sample_message(eml)
            findings, checks_note = _findings(site, result) if self.checks else (None, "")
            checks_ran = findings is not None
            findings = findings or []
            html, marked = mark_finding_lines(
                html, [(f.number, f.html_line, f.text) for f in findings if f.html_line]
            )
            findings = [_with_marked(f, f.number in marked) for f in findings]
            rendered = result.rendered
            return Snapshot(
                version=self._next_version(),
                issue_path=self.issue_path,
                built_at=dt.datetime.now(),
                seconds=time.perf_counter() - started,
                subject=rendered.subject,
                preheader=rendered.preheader,
                html=html,
                text=text,
                headers=headers,
                web_html=web_html,
                eml=eml,
                warnings=list(result.warnings),
                findings=findings,
                checks_ran=checks_ran,
                checks_note=checks_note,
            )
        except Exception as exc:  # every failure becomes a page, so the server keeps serving
            return Snapshot(
                version=self._next_version(),
                issue_path=self.issue_path,
                built_at=dt.datetime.now(),
                seconds=time.perf_counter() - started,
                problem=BuildProblem.from_exception(exc),
            )


def _with_marked(finding: FindingView, marked: bool) -> FindingView:
    return FindingView(**{**finding.__dict__, "marked": marked})


# --------------------------------------------------------------------------- watching


def watched_paths(site_root: Path, issue_path: Path) -> list[Path]:
    """Every file whose change can change the issue: config, issue, articles, templates.

    Articles the issue names outside ``articles/`` are watched too. Folders are
    listed afresh on each poll, so a new template or article counts as a change.
    """
    files = [site_root / CONFIG_NAME, site_root / ".env", issue_path]
    folders = [site_root / "articles", site_root / "templates"]
    package = package_templates_dir()
    if package is not None:
        folders.append(package)
    try:
        issue = load_issue(issue_path)
    except (IssueFileError, OSError):
        issue = None
    if issue is not None:
        from .articles import is_url, split_selector
        from .articles.sources import resolve_path

        for entry in issue.articles:
            location, _entry = split_selector(entry.source, site_root)  # "news.xml#<entry URL>" is news.xml
            if not location or is_url(location):
                continue  # a URL cannot be watched; saving any watched file fetches it again
            files.append(resolve_path(location, site_root))
    for folder in folders:
        if folder.is_dir():
            files.extend(
                p for p in folder.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc" and p.is_file()
            )
    return files


def fingerprint(paths: list[Path]) -> tuple:
    """Modification time and size of each path (None when missing): any edit changes it."""
    marks = []
    for path in sorted(set(paths)):
        try:
            stat = path.stat()
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            marks.append((str(path), None, None))
    return tuple(marks)


# --------------------------------------------------------------------------- serving


def _page_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _json_for_script(data) -> str:
    """JSON that is safe inside a <script type="application/json"> element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
        email_policy = {
            "Content-Security-Policy": "script-src 'none'; object-src 'none'; frame-ancestors 'self'",
        }
        if path == "/":
            body = preview.render_page(snapshot).encode("utf-8")
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", {
                "Content-Security-Policy": "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; "
                "frame-ancestors 'none'",
            })
        elif path == "/version":
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
        self._page = _page_environment().get_template("page.html")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch = fingerprint(watched_paths(site_root, issue_path))
        self._snapshot = self._with_watch_count(self.builder.build())
        try:
            self._httpd = server_class((host, port), _Handler)
        except OSError as exc:
            raise NewsletterError(
                f"cannot listen on port {port}: {exc.strerror or exc}",
                where=f"{host}:{port}",
                hint="pass another port with --port, or stop the program using this one",
            ) from None
        self._httpd.preview = self
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
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    def _with_watch_count(self, snapshot: Snapshot) -> Snapshot:
        return Snapshot(**{**snapshot.__dict__, "watched": len(self._watch)})

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            current = fingerprint(watched_paths(self.site_root, self.issue_path))
            if current == self._watch:
                continue
            # Let an editor finish writing (some save in several steps) before building.
            while not self._stop.wait(0.1):
                settled = fingerprint(watched_paths(self.site_root, self.issue_path))
                if settled == current:
                    break
                current = settled
            self._watch = current
            self.rebuild()

    def render_page(self, snapshot: Snapshot) -> str:
        try:
            issue_label = os.path.relpath(snapshot.issue_path, self.site_root)
        except ValueError:
            issue_label = str(snapshot.issue_path)
        headers = dict((name.lower(), value) for name, value in snapshot.headers)
        return self._page.render(
            s=snapshot,
            issue_label=issue_label,
            site_root=str(self.site_root),
            desktop_width=DESKTOP_WIDTH,
            phone_width=PHONE_WIDTH,
            header=headers,
            findings_json=_json_for_script([f.to_json() for f in snapshot.findings]),
            open_findings=[f for f in snapshot.findings if not f.accepted_reason],
            accepted_findings=[f for f in snapshot.findings if f.accepted_reason],
        )

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def shutdown(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "PreviewServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def _address_family(host: str):
    import socket

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


def resolve_issue_path(site_root: Path, issue_path: str | os.PathLike) -> Path:
    """An issue path as typed: relative to the current folder, or else to the site folder."""
    path = Path(issue_path)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [Path.cwd() / path, site_root / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise IssueFileError(
        "no such issue file",
        where=str(issue_path),
        hint=f"give the path of a .toml file, e.g. issues/2026-11.toml inside {site_root}",
    )


def serve_preview(
    site: Site | str | os.PathLike,
    issue_path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    poll_interval: float = POLL_SECONDS,
    checks: bool = True,
) -> PreviewServer:
    """Build ISSUE once, start serving it on ``host:port`` and rebuild on every change.

    ``site`` may be a loaded Site or a site folder: given a folder, a broken
    ``newsletter.toml`` is shown in the page rather than refused, so staff can
    start the preview and fix the file while watching. Returns at once; call
    ``shutdown()`` on the result to stop. ``port=0`` picks a free port.
    """
    if isinstance(site, Site):
        site_root = site.root
    else:
        site_root = Path(site).resolve()
        if not (site_root / CONFIG_NAME).is_file():
            Site.load(site_root)  # raises the usual "no newsletter.toml here" error
    issue = resolve_issue_path(site_root, issue_path)
    return PreviewServer(site_root, issue, host, port, poll_interval=poll_interval, checks=checks)
