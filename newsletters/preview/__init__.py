"""The staff preview: one issue, served on the loopback address, rebuilt on every save.

Marketing edits an issue file, an article or a template and wants to see the
result the way a subscriber will, before anything is sent. So the preview shows
the *sample message* (``sample.eml`` from the build, with the sample recipient's
name and links filled in) rather than the raw build with placeholders: the HTML
part at a desktop and a phone width side by side, the plain-text part, and the
message headers. The pre-send findings sit next to it, pointing at the place in
the email they are about.

Change detection polls modification times every 50 ms. That needs no extra
dependency, works on every file system (including network shares and editors
that save by renaming), and a site folder holds a few dozen files at most
(looking at them costs about 0.4 ms). The page holds a ``/version?after=V``
request open and reloads itself as soon as the server answers with a newer
build; ``bench/preview.py`` measures save-to-screen.

A broken change (bad TOML, a template error, an unreadable article) must not
stop the server: the error goes into the page, and the next save that fixes it
brings the issue back. Each build goes into a private temporary folder that is
removed right after it was read, so the preview never leaves half-written files
in ``build/``.
"""

from .markers import mark_finding_lines
from .server import DESKTOP_WIDTH, PHONE_WIDTH, PreviewServer, resolve_issue_path, serve_preview
from .snapshot import BuildProblem, FindingView, PreviewBuilder, Snapshot, read_sample_message, source_excerpt
from .watch import fingerprint, package_templates_dir, watched_paths

__all__ = [
    "DESKTOP_WIDTH", "PHONE_WIDTH", "BuildProblem", "FindingView", "PreviewBuilder", "PreviewServer", "Snapshot",
    "fingerprint", "mark_finding_lines", "package_templates_dir", "read_sample_message", "resolve_issue_path",
    "serve_preview", "source_excerpt", "watched_paths",
]
