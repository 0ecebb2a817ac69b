"""How long ``newsletter send`` takes to get to its question, with and without reusing the build's checks.

    .venv/bin/python bench/send_startup.py [--site examples/clinic] [--issue issues/2026-11.toml] [-n 5]

``send`` builds the issue, runs the pre-send checks, checks the transport and
counts the recipients before it asks "Send to N subscribers?". Right after
``newsletter build`` (or ``check``) the content is the same, so the checks,
SpamAssassin included, are read back from ``build/<slug>/.checks.json``.
This times ``prepare_send`` (everything before the question) N times each
way in one process, on a private copy of the site sending to its outbox:

``reused``: after a ``build`` of the same content, as in the usual workflow;
``reference``: with the stored results removed first, which is what every send
did before (all rules and a SpamAssassin run).

Prints the mean and median of each and the ratio. Times are wall-clock.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletters.build import build_issue  # noqa: E402
from newsletters.checks import run_checks  # noqa: E402
from newsletters.checks.cache import CACHE_NAME  # noqa: E402
from newsletters.config import Site  # noqa: E402
from newsletters.delivery import prepare_send  # noqa: E402

SECRET = "bench-secret-key-" + "y" * 24


def time_prepare(site: Site, issue: str, *, drop_cache: bool) -> float:
    if drop_cache:
        for cache in site.build_dir.glob(f"*/{CACHE_NAME}"):
            cache.unlink()
    started = time.perf_counter()
    plan = prepare_send(site, issue)
    elapsed = time.perf_counter() - started
    plan.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default=str(ROOT / "examples" / "clinic"))
    parser.add_argument("--issue", default="issues/2026-11.toml")
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-send-startup-") as tmp:
        site_dir = Path(tmp) / "site"
        shutil.copytree(args.site, site_dir, ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*", ".env"))
        (site_dir / ".env").write_text(f"SECRET_KEY={SECRET}\n")  # no SMTP_HOST: the outbox
        site = Site.load(site_dir)
        result = build_issue(site, args.issue)
        run_checks(site, result)  # what `newsletter build` does: the stored results of this content
        time_prepare(site, args.issue, drop_cache=False)  # warm-up: imports, database, templates
        reused, reference = [], []
        for _ in range(args.runs):
            reused.append(time_prepare(site, args.issue, drop_cache=False))
            reference.append(time_prepare(site, args.issue, drop_cache=True))
    print(f"send start-up (build, checks, transport, counts; everything before the question), {args.runs} runs each")
    for name, values in (("checks reused after build", reused), ("reference: checks run again", reference)):
        print(f"  {name:<30} mean {statistics.mean(values) * 1000:6.0f} ms   median {statistics.median(values) * 1000:6.0f} ms")
    print(f"  ratio (reference / reused)     {statistics.mean(reference) / statistics.mean(reused):.2f}x faster")


if __name__ == "__main__":
    main()
