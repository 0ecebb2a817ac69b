"""How long the preview takes to show a saved change: from the save to the page showing the new issue.

    .venv/bin/python bench/preview.py [--site examples/clinic] [--issue issues/2026-11.toml] [-n 12]

Starts the real preview server on 127.0.0.1 over a private copy of the site,
then N times saves a new subject into the issue file and times how long it
takes until a client that behaves like the preview page has the new version
and has fetched what the browser then loads (the page and the e-mail frame).
Two clients run in the same process, one after the other, so the ratio
compares like with like on a busy machine:

``page`` follows the page's protocol as shipped: ``GET /version?after=V``,
which the server answers as soon as a build newer than V is published.

``reference`` is the loop as it was before: the server looking for changes
every 0.4 s, and the page asking ``/version`` every 0.5 s.

The mean, median and worst latency of each, and the ratio of the means, are
printed. Times are wall-clock on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletters.preview import serve_preview  # noqa: E402

REFERENCE_SERVER_POLL = 0.4  # seconds: the watcher's interval before this change
REFERENCE_PAGE_POLL = 0.5  # seconds: page.js asked /version this often before this change


def get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def version(base: str, after: str | None = None) -> str:
    query = f"?after={after}" if after else ""
    return json.loads(get(base + "version" + query))["version"]


def wait_page(base: str, old: str) -> None:
    """The shipped page: one request that returns when a newer build exists, then the reload."""
    while version(base, old) == old:
        pass
    get(base)
    get(base + "email.html")


def wait_reference(base: str, old: str, phase: float) -> None:
    """The page before: /version every 0.5 s (starting at a random point of its cycle), then the reload."""
    time.sleep(phase)
    while version(base) == old:
        time.sleep(REFERENCE_PAGE_POLL)
    get(base)
    get(base + "email.html")


def measure(site_dir: Path, issue: str, runs: int, *, reference: bool) -> list[float]:
    issue_path = site_dir / issue
    original = issue_path.read_text(encoding="utf-8")
    options = {"poll_interval": REFERENCE_SERVER_POLL} if reference else {}
    latencies = []
    with serve_preview(site_dir, issue, port=0, **options) as server:
        base = server.url
        for n in range(runs):
            old = version(base)
            time.sleep(0.3)  # the editor is idle for a moment before the next save
            started = time.perf_counter()
            issue_path.write_text(original.replace('subject = "', f'subject = "Edit {n}: ', 1), encoding="utf-8")
            if reference:
                wait_reference(base, old, phase=(n * 0.37) % REFERENCE_PAGE_POLL)
            else:
                wait_page(base, old)
            latencies.append(time.perf_counter() - started)
    issue_path.write_text(original, encoding="utf-8")
    return latencies


def summary(name: str, values: list[float]) -> str:
    return (f"  {name:<32} mean {statistics.mean(values) * 1000:6.0f} ms   median "
            f"{statistics.median(values) * 1000:6.0f} ms   worst {max(values) * 1000:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default=str(ROOT / "examples" / "clinic"))
    parser.add_argument("--issue", default="issues/2026-11.toml")
    parser.add_argument("-n", "--runs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as tmp:
        site_dir = Path(tmp) / "site"
        shutil.copytree(args.site, site_dir, ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*"))
        page = measure(site_dir, args.issue, args.runs, reference=False)
        reference = measure(site_dir, args.issue, args.runs, reference=True)
    print(f"preview: save -> new version shown (page and e-mail frame fetched), {args.runs} saves each")
    print(summary("page as shipped", page))
    print(summary("reference (0.4 s + 0.5 s polls)", reference))
    print(f"  ratio (reference / shipped)  {statistics.mean(reference) / statistics.mean(page):.2f}x faster")


if __name__ == "__main__":
    main()
