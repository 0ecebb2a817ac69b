"""``newsletter build``: issue file in, the four files a send and a review need out.

``build/<slug>/email.html`` (what subscribers get, shown as the made-up sample
subscriber gets it), ``email.txt`` (its plain-text alternative, likewise),
``web.html`` (the browser and archive version), ``sample.eml`` (the complete
message for that sample subscriber, to open in a mail client), and
``email.template.html`` / ``email.template.txt``: the same two parts with the
per-recipient placeholder tokens still in, which is what ``send`` fills.
Line N of ``email.html`` is line N of ``email.template.html``. The preview server and the pre-send
checks call ``build_issue`` too, so its result is the one shape every later
step reads.

Everything is rendered in memory first and then written through temporary
files that are renamed into place, so an error never leaves a half-built
issue that looks complete.

Beside them, ``.inlined.json`` keeps the last CSS inlining (premailer),
signed with ``SECRET_KEY`` over the HTML it was given, the HTML it made and
the inliner itself (``render.inliner_fingerprint``). Inlining is most of a
fresh process's render (about 0.4 s here, premailer and cssutils warming up),
and every ``send`` process, each of several senders included, builds the
issue again: after ``newsletter build`` they find the same HTML and reuse it.
The file is only an optimisation: one that cannot be read, was made from other
HTML or by another inliner, or is not signed with this key, means inlining
again; one that cannot be written, no reuse; no ``SECRET_KEY``, no file.

``.articles.json`` does the same for the articles as read (``KeptArticles``):
each issue article from a file in the site folder, signed over the readers
(``articles.readers_fingerprint``), the source as written, the site's web
address and the file's bytes. Reading them is the rest of a fresh process's
build (0.1 s for the example issue, most of it importing trafilatura, feedparser
and markdown). Articles on the web are read every time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .articles import is_url, read_one, readers_fingerprint, split_selector
from .articles.model import Article
from .articles.sources import MAX_BYTES, resolve_path
from .config import Site
from .errors import ArticleError, IssueFileError
from .issues import Issue, IssueArticle, load_issue
from .personalize import GMAIL_CLIP_BYTES, encoded_html_size, fill_for_sample, sample_message
from .render import RenderedIssue, inline_css, inliner_fingerprint, render_issue

OUTPUT_NAMES = ("email.html", "email.txt", "web.html", "sample.eml", "email.template.html", "email.template.txt")
INLINED_NAME = ".inlined.json"
_INLINED_PURPOSE = b"newsletters inlined css v1\0"
ARTICLES_NAME = ".articles.json"
_ARTICLES_PURPOSE = b"newsletters articles v1\0"


@dataclass
class BuildResult:
    issue: Issue
    articles: list[tuple[IssueArticle, Article]]
    rendered: RenderedIssue
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    encoded_html_bytes: int = 0  # the HTML part as sample.eml carries it: what Gmail counts

    @property
    def clipped_by_gmail(self) -> bool:
        """Gmail hides the rest of a message whose HTML part passes 102 KB, unsubscribe link included."""
        return self.encoded_html_bytes > GMAIL_CLIP_BYTES


def resolve_issue_path(site: Site | str | os.PathLike, issue_path: str | os.PathLike) -> Path:
    """A relative path means the current folder first (as a shell user expects), then the site folder.

    ``site`` may be a site folder instead of a loaded Site: the preview resolves
    the issue before newsletter.toml is known to load, so it can show a broken
    config in the page.
    """
    root = site.root if isinstance(site, Site) else Path(site)
    path = Path(issue_path)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, root / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = "check the path" if path.is_absolute() else f"looked in {Path.cwd()} and in the site folder {root}"
    raise IssueFileError(
        "no such issue file",
        where=str(path),
        hint=f"{looked}; issues usually live in issues/, e.g. issues/2026-11.toml",
    )


def read_articles(site: Site, issue: Issue, read: Callable[..., Article] = read_one) -> list[tuple[IssueArticle, Article]]:
    """Each ``[[articles]]`` entry read; an entry that cannot be read is named as the issue file counts it.

    ``read`` is ``read_one`` or one that remembers (``KeptArticles.read``).
    """
    articles = []
    for n, entry in enumerate(issue.articles, 1):
        try:
            articles.append((entry, read(entry.source, root=site.root, base_url=site.config.website)))
        except ArticleError as exc:
            raise ArticleError(
                exc.message, where=f"{issue.path}: articles[{n}]: {exc.where or entry.source}", hint=exc.hint
            ) from None
    return articles


def current_umask() -> int:
    """The process's umask. Linux says it in /proc; elsewhere it can only be read by setting it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place.

    If any write fails, the temporaries are removed and no final file changes.
    The files get the permissions any new file would (0666 less the umask):
    ``mkstemp`` makes them 0600, which would hide a build from the web server
    or a colleague that ``open()`` would have let read it.
    """
    mode = 0o666 & ~current_umask()
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((Path(temp), path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        for temp, path in temps:
            os.replace(temp, path)
    except BaseException:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        raise


def build_issue(site: Site, issue_path: str | os.PathLike, out_dir: Path | None = None) -> BuildResult:
    """Read, render and write one issue; returns what was built and where."""
    t0 = time.perf_counter()
    issue = load_issue(resolve_issue_path(site, issue_path))
    target = Path(out_dir if out_dir is not None else site.build_dir) / issue.slug
    secret = site.setting("SECRET_KEY")
    if secret:
        kept = KeptArticles(target / ARTICLES_NAME, secret)
        articles = read_articles(site, issue, kept.read)
        kept.save()
    else:
        articles = read_articles(site, issue)
    t1 = time.perf_counter()
    inline = remembered_inlining(target / INLINED_NAME, secret) if secret else inline_css
    rendered = render_issue(site, issue, articles, inline=inline)
    t2 = time.perf_counter()
    sample = sample_message(site, rendered, issue.slug)
    t3 = time.perf_counter()

    contents = {
        "email.html": fill_for_sample(site, rendered, rendered.html, html=True).encode("utf-8"),
        "email.txt": fill_for_sample(site, rendered, rendered.text, html=False).encode("utf-8"),
        "web.html": rendered.web_html.encode("utf-8"),
        "sample.eml": sample,
        "email.template.html": rendered.html.encode("utf-8"),
        "email.template.txt": rendered.text.encode("utf-8"),
    }
    paths = {name: target / name for name in OUTPUT_NAMES}
    write_atomically({paths[name]: contents[name] for name in OUTPUT_NAMES})
    t4 = time.perf_counter()

    timings = {"read": t1 - t0, **rendered.timings, "sample": t3 - t2, "write": t4 - t3}
    return BuildResult(
        issue=issue,
        articles=articles,
        rendered=rendered,
        out_dir=target,
        paths=paths,
        warnings=list(rendered.warnings),
        timings=timings,
        encoded_html_bytes=encoded_html_size(sample),
    )


def _signature(secret: str, purpose: bytes, *parts: str) -> str:
    """HMAC-SHA256 under the site's key, over a purpose (so no kept file can pass for another) and parts."""
    signed = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode("utf-8"), purpose + signed, hashlib.sha256).hexdigest()


class KeptArticles:
    """``read_one``, reusing what the last build read from the same file with the same readers.

    What is kept is mailed, so each entry is signed with the site's ``SECRET_KEY``
    over the readers, the source as the issue gives it, the folder it is found
    from, the site's web address and the file's bytes: an entry written by anyone
    without the key, or for other bytes, is read afresh. Sources on the web are
    always read (what they say can change with nothing here to show it).
    """

    def __init__(self, path: Path, secret: str):
        self.path, self.secret = path, secret
        self._fingerprint: str | None = None  # read at the first file source: it stats the readers' files
        self._changed = False
        try:
            self._kept = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(self._kept, dict):
                self._kept = {}
        except (OSError, ValueError):
            self._kept = {}

    def read(self, source: str, *, root: Path | None, base_url: str) -> Article:
        inputs = self._inputs(source, root, base_url)
        if inputs is None:
            return read_one(source, root=root, base_url=base_url)
        entry = self._kept.get(source)
        try:
            fields = entry["article"]
            if hmac.compare_digest(self._sign(inputs, fields), entry["signature"]):
                return Article(**fields)
        except (KeyError, TypeError, ValueError):
            pass
        article = read_one(source, root=root, base_url=base_url)
        fields = asdict(article)
        self._kept[source] = {"article": fields, "signature": self._sign(inputs, fields)}
        self._changed = True
        return article

    def save(self) -> None:
        """Write what was read afresh; a file that cannot be written means reading again next time."""
        if self._changed:
            try:
                write_atomically({self.path: json.dumps(self._kept).encode("utf-8")})
            except OSError:
                pass

    def _inputs(self, source: str, root: Path | None, base_url: str) -> str | None:
        """Everything the article read from ``source`` depends on; None for a source on the web."""
        location, _entry = split_selector(source, root)
        if not location or is_url(location):
            return None
        try:
            with resolve_path(location, root).open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)  # a bigger file is refused by the reader, never kept
        except OSError:
            return None  # the reader says what is wrong with it
        if self._fingerprint is None:
            self._fingerprint = readers_fingerprint()
        return "\0".join([self._fingerprint, source, str(root), base_url, hashlib.sha256(data).hexdigest()])

    def _sign(self, inputs: str, fields: dict) -> str:
        return _signature(self.secret, _ARTICLES_PURPOSE, inputs, json.dumps(fields, sort_keys=True))


def remembered_inlining(path: Path, secret: str) -> Callable[[str], str]:
    """``inline_css``, reusing the result kept in ``path`` when the HTML and the inliner are the same.

    The kept result is what subscribers get, so it is signed with the site's
    ``SECRET_KEY``, over the inliner, the HTML it was given and the HTML it
    made: a file put there by anyone without the key is not used.
    """

    def signature(fingerprint: str, html: str, inlined: str) -> str:
        return _signature(secret, _INLINED_PURPOSE, fingerprint, html, inlined)

    def inline(html: str) -> str:
        fingerprint = inliner_fingerprint()  # read once: it stats the inliner's package files
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(kept["html"], str) and hmac.compare_digest(
                signature(fingerprint, html, kept["html"]), kept["signature"]
            ):
                return kept["html"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        inlined = inline_css(html)
        try:
            kept = {"signature": signature(fingerprint, html, inlined), "html": inlined}
            write_atomically({path: json.dumps(kept).encode("utf-8")})
        except OSError:
            pass
        return inlined

    return inline
