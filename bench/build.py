"""How long an issue takes to build, stage by stage, and how fast messages are personalized.

    .venv/bin/python bench/build.py [--site examples/clinic] [--issue issues/2026-11.toml] [-n 20] [-m 3000]

Builds the issue N times in this process (into a temporary folder) and prints
the mean time of each stage and its share of the total; each build inlines the
CSS afresh (the inlining kept from the last build is removed first), and one
more line says what a rebuild of the same content takes when it may reuse it.
Then builds M per-recipient messages with ``MessageFactory.build`` and, as
the baseline in the same run, the same M messages assembled with the standard
library's ``EmailMessage`` (placeholders replaced, then
set_content/add_alternative and as_bytes), and prints messages per second for
both and the ratio. Times are
wall-clock on whatever machine runs it; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import os
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletters.build import INLINED_NAME, build_issue  # noqa: E402
from newsletters.config import Site  # noqa: E402
from newsletters.personalize import MessageFactory  # noqa: E402
from newsletters.render import FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL  # noqa: E402

STAGES = ("read", "render", "mjml", "inline", "sample", "write")


def bench_build(site: Site, issue: str, runs: int):
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    totals = []
    result = None
    with tempfile.TemporaryDirectory() as out:
        warm = build_issue(site, issue, out_dir=Path(out))  # warm-up: imports, template compilation
        for _ in range(runs):
            (warm.out_dir / INLINED_NAME).unlink(missing_ok=True)
            start = time.perf_counter()
            result = build_issue(site, issue, out_dir=Path(out))
            totals.append(time.perf_counter() - start)
            for stage in STAGES:
                samples[stage].append(result.timings.get(stage, 0.0))
        start = time.perf_counter()
        build_issue(site, issue, out_dir=Path(out))  # the same content again: the inlining is reused
        reused = time.perf_counter() - start
    return result, samples, totals, reused


def stdlib_message(site: Site, rendered, *, to_email, to_name, first_name, unsubscribe_url, view_url) -> bytes:
    """The baseline: the same message the usual way, with email.message.EmailMessage."""
    config = site.config
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"{config.sender_name} <{config.sender_address}>"
    msg["To"] = f"{to_name} <{to_email}>"
    msg["Subject"] = rendered.subject.replace(FIRST_NAME, first_name)
    msg["Date"] = format_datetime(email.utils.localtime())
    msg["Message-ID"] = make_msgid(domain=config.sender_domain)
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>, <mailto:{config.sender_reply_to}?subject=unsubscribe>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"{config.name} <newsletter.{config.sender_domain}>"
    text = rendered.text.replace(FIRST_NAME, first_name).replace(UNSUBSCRIBE_URL, unsubscribe_url).replace(VIEW_URL, view_url)
    body = (
        rendered.html.replace(FIRST_NAME, html.escape(first_name))
        .replace(UNSUBSCRIBE_URL, html.escape(unsubscribe_url))
        .replace(VIEW_URL, html.escape(view_url))
    )
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(body, subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def bench_personalize(site: Site, rendered, count: int):
    start = time.perf_counter()
    factory = MessageFactory(site, rendered, issue_slug=rendered.slug)
    setup = time.perf_counter() - start
    recipients = [
        (f"reader{i}@example.com", f"Reader {i}", ("Zoë", "Sam", "")[i % 3], f"{site.public_url}/unsubscribe/token-{i:06d}")
        for i in range(count)
    ]

    # Each message is dropped once built, as the delivery pipe hands it to the
    # transport and forgets it; only the first and last are kept for the check below.
    start = time.perf_counter()
    for address, name, first, unsub in recipients:
        message = factory.build(to_email=address, to_name=name, first_name=first, unsubscribe_url=unsub)
        if address == recipients[0][0]:
            ours = [message]
    ours.append(message)
    fast = time.perf_counter() - start

    start = time.perf_counter()
    for address, name, first, unsub in recipients:
        message = stdlib_message(site, rendered, to_email=address, to_name=name, first_name=first or rendered.first_name_fallback,
                                 unsubscribe_url=unsub, view_url=rendered.view_url)
        if address == recipients[0][0]:
            baseline = [message]
    baseline.append(message)
    slow = time.perf_counter() - start

    # Same content both ways, or the comparison means nothing.
    for a, b in ((ours[0], baseline[0]), (ours[-1], baseline[-1])):
        ma = email.message_from_bytes(a, policy=email.policy.default)
        mb = email.message_from_bytes(b, policy=email.policy.default)
        for kind in ("plain", "html"):
            body_a = ma.get_body((kind,)).get_content().replace("\r\n", "\n")
            body_b = mb.get_body((kind,)).get_content().replace("\r\n", "\n")
            assert body_a == body_b, f"{kind} bodies differ between factory and baseline"
    return setup, fast, slow, len(ours[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=str(ROOT / "examples" / "clinic"))
    parser.add_argument("--issue", default="issues/2026-11.toml")
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("-m", "--messages", type=int, default=3000)
    args = parser.parse_args(argv)

    # The kept inlining is signed with SECRET_KEY; the example site has no .env (as in `make demo`).
    os.environ.setdefault("SECRET_KEY", "bench-only-key-for-the-example-site-never-use-for-real")
    site = Site.load(args.site)
    shown_site = Path(args.site).resolve()
    shown_site = shown_site.relative_to(ROOT) if shown_site.is_relative_to(ROOT) else shown_site
    print(f"$ .venv/bin/python bench/build.py --site {shown_site} --issue {args.issue} -n {args.runs} -m {args.messages}")
    result, samples, totals, reused = bench_build(site, args.issue, args.runs)
    mean_total = statistics.mean(totals)
    print(f"\nbuild of {args.issue}: {args.runs} runs, mean {mean_total * 1000:.1f} ms per build "
          f"(email.html {result.encoded_html_bytes / 1024:.1f} KB as sent, {len(result.articles)} articles)")
    print(f"  {'stage':<8} {'mean ms':>9} {'share':>7}")
    for stage in STAGES:
        mean = statistics.mean(samples[stage])
        print(f"  {stage:<8} {mean * 1000:>9.2f} {mean / mean_total:>7.1%}")
    other = mean_total - sum(statistics.mean(samples[s]) for s in STAGES)
    print(f"  {'other':<8} {other * 1000:>9.2f} {other / mean_total:>7.1%}")
    print(f"the same content again, its CSS inlining reused from the last build: {reused * 1000:.1f} ms")

    setup, fast, slow, size = bench_personalize(site, result.rendered, args.messages)
    n = args.messages
    print(f"\npersonalize: {n} messages of {size / 1024:.1f} KB (factory set-up once: {setup * 1000:.1f} ms)")
    print(f"  MessageFactory.build      {n / fast:>10,.0f} msg/s  ({fast / n * 1000:.3f} ms each)")
    print(f"  stdlib EmailMessage       {n / slow:>10,.0f} msg/s  ({slow / n * 1000:.3f} ms each)")
    print(f"  ratio                     {slow / fast:>10.1f}x faster")


if __name__ == "__main__":
    main()
