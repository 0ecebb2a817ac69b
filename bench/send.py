"""How fast ``newsletter send`` delivers, against the limit and against the naive way, and what it costs in memory.

    .venv/bin/python bench/send.py [-n 10000] [--connections 4] [--naive 40] [--memory 1000,100000]

All in one run, to a minimal SMTP sink in another process (bench/smtp_sink.py):

1. ours: the real send (``prepare_send`` + ``SendPlan.execute``: the ledger in
   SQLite, personalisation, the rate limiter, N connections) of the example issue
   to N subscribers, in a child process; only ``execute`` is timed;
2. the limit: smtplib sending one pre-built message N times over the same number
   of connections (threads), nothing else;
3. the naive loop: per recipient, render the issue (Jinja, MJML, CSS inlining),
   build an ``EmailMessage``, open a new connection, send, quit; timed on
   ``--naive`` recipients and reported per message;
4. memory: the peak RSS of a child process sending to 1,000 and to 100,000
   subscribers (fresh database each), and the difference.

With ``--postgres`` the ledger of "ours" and of the memory test is also run on
a throwaway PostgreSQL (Debian's, started here as the tests start it), and the
PostgreSQL / SQLite throughput ratio is printed (target >= 0.8).

Targets: ours >= 0.8x the limit, >= 20x the naive loop, peak growth <= 20 MB.
Wall-clock numbers depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres_server import PostgresServer  # noqa: E402 - after the path above

EXAMPLE = ROOT / "examples" / "clinic"
ISSUE = "issues/2026-11.toml"
SECRET = "bench-secret-key-" + "x" * 24


def make_site(folder: Path, port: int, connections: int, subscribers: int, database_url: str | None = None) -> Path:
    site_dir = folder / "site"
    shutil.copytree(EXAMPLE, site_dir, ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*", ".env"))
    (site_dir / ".env").write_text(
        f"SECRET_KEY={SECRET}\nPUBLIC_URL=https://news.larkfield-clinic.example.com\n"
        f"SMTP_HOST=127.0.0.1\nSMTP_PORT={port}\nSMTP_SECURITY=none\nSMTP_CONNECTIONS={connections}\n"
        + (f"DATABASE_URL={database_url}\n" if database_url else "")
    )
    add_subscribers(site_dir, subscribers)
    return site_dir


def add_subscribers(site_dir: Path, count: int) -> None:
    """Bulk-insert consenting subscribers (what an import produces), quickly."""
    from newsletters.config import Site
    from recipients import open_store
    from foundation.tables import consent_events, subscribers

    now = datetime.now(timezone.utc)
    with open_store(Site.load(site_dir)) as store, store.engine.begin() as conn:
        for start in range(0, count, 5000):
            rows = []
            for n in range(start, min(count, start + 5000)):
                address = f"reader{n:06d}@example.org"
                rows.append(
                    dict(
                        id=n + 1, public_id=secrets.token_urlsafe(16), email=address, email_hash=store.hash(address),
                        first_name=f"Reader{n}", last_name="Example", attributes={}, status="active", created_at=now,
                    )
                )
            conn.execute(subscribers.insert(), rows)
            conn.execute(
                consent_events.insert(),
                [
                    dict(subscriber_id=r["id"], event="subscribed", at=now, recorded_at=now, method="import", source="bench")
                    for r in rows
                ],
            )


def start_sink() -> tuple[subprocess.Popen, int]:
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "smtp_sink.py")], stdout=subprocess.PIPE, text=True)
    return sink, int(sink.stdout.readline().split()[1])


def stop_sink(sink: subprocess.Popen) -> int:
    sink.terminate()
    out = sink.communicate(timeout=30)[0]
    return int(out.split()[-1]) if out.strip() else -1


# -- 1 and 4: our send, in a child process ----------------------------------------------------

def child_send(site_dir: str) -> None:
    """Runs in the child: the real send; prints seconds, counts and peak RSS as JSON."""
    from newsletters.config import Site
    from newsletters.delivery import prepare_send

    site = Site.load(site_dir)
    with prepare_send(site, ISSUE) as plan:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        report = plan.execute(handle_signals=False)
        seconds = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
                "summary": report.summary,
                "rss_before_kb": rss_before,
                "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def run_ours(site_dir: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(site_dir)], capture_output=True, text=True, cwd=site_dir, timeout=3600
    )
    if result.returncode != 0:
        raise SystemExit(f"the send failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- 2: the limit -------------------------------------------------------------------------

def sample_message(site_dir: Path) -> tuple[bytes, object]:
    from newsletters.build import build_issue
    from newsletters.config import Site
    from newsletters.personalize import sample_message as sample

    site = Site.load(site_dir)
    build = build_issue(site, site_dir / ISSUE)
    return sample(site, build.rendered, build.issue.slug), build


def run_raw(port: int, message: bytes, count: int, connections: int) -> float:
    def worker(n: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for i in range(n):
            smtp.sendmail("news@larkfield-clinic.example.com", [f"raw{i}@example.org"], message)
        smtp.quit()

    shares = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - t0)


# -- 3: the naive loop ---------------------------------------------------------------------

def run_naive(site_dir: Path, port: int, count: int) -> float:
    from newsletters.build import read_articles
    from newsletters.config import Site
    from newsletters.issues import load_issue
    from newsletters.render import FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL, render_issue

    site = Site.load(site_dir)
    issue = load_issue(site_dir / ISSUE)
    articles = read_articles(site, issue)
    t0 = time.perf_counter()
    for n in range(count):
        rendered = render_issue(site, issue, articles)  # Jinja + MJML + CSS inlining, every time
        values = {FIRST_NAME: f"Reader{n}", UNSUBSCRIBE_URL: f"{site.public_url}/unsubscribe/t{n}", VIEW_URL: site.public_url}
        html, text, subject = rendered.html, rendered.text, rendered.subject
        for token, value in values.items():
            html, text, subject = html.replace(token, value), text.replace(token, value), subject.replace(token, value)
        message = EmailMessage()
        message["From"] = f"{site.config.sender_name} <{site.config.sender_address}>"
        message["To"] = f"reader{n}@example.org"
        message["Subject"] = subject
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(message)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="messages for ours and for the limit")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--naive", type=int, default=40, help="recipients for the naive loop")
    parser.add_argument("--memory", default="1000,100000", help="two list sizes for the memory test ('' to skip)")
    parser.add_argument("--postgres", action="store_true", help="also run ours and the memory test on PostgreSQL")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_send(args.child)

    postgres = PostgresServer.start() if args.postgres else None
    sink, port = start_sink()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
            print(f"setting up {args.n} subscribers …", flush=True)
            site_dir = make_site(Path(tmp), port, args.connections, args.n)
            message, build = sample_message(site_dir)
            print(f"message size {len(message) / 1024:.1f} KB, {args.connections} connections, sink on port {port}")

            ours = run_ours(site_dir)
            ours_rate = args.n / ours["seconds"]
            assert ours["summary"]["sent"] == args.n, ours["summary"]
            raw_rate = run_raw(port, message, args.n, args.connections)
            naive_rate = run_naive(site_dir, port, args.naive)

            print()
            print(f"ours (newsletter send, {args.n} personalised, ledger):  {ours_rate:8.0f} msg/s")
            print(f"limit (smtplib, one pre-built message):            {raw_rate:8.0f} msg/s")
            print(f"naive (render + inline + connect per recipient):   {naive_rate:8.1f} msg/s  ({args.naive} recipients)")
            print(f"ours / limit = {ours_rate / raw_rate:.2f}   (target >= 0.8)")
            print(f"ours / naive = {ours_rate / naive_rate:.0f}x   (target >= 20x)")
        if postgres:
            with tempfile.TemporaryDirectory(prefix="bench-send-pg-") as tmp:
                site_dir = make_site(Path(tmp), port, args.connections, args.n, postgres.fresh_database())
                pg = run_ours(site_dir)
                assert pg["summary"]["sent"] == args.n, pg["summary"]
                pg_rate = args.n / pg["seconds"]
                print(f"ours, ledger in PostgreSQL:                        {pg_rate:8.0f} msg/s")
                print(f"PostgreSQL / SQLite = {pg_rate / ours_rate:.2f}   (target >= 0.8)")

        sizes = [int(s) for s in args.memory.split(",") if s.strip()]
        for database in ["sqlite"] + (["postgresql"] if postgres else []) if len(sizes) == 2 else []:
            peaks = []
            for size in sizes:
                with tempfile.TemporaryDirectory(prefix="bench-send-mem-") as tmp:
                    print(f"\nmemory ({database}): sending to {size} subscribers …", flush=True)
                    url = postgres.fresh_database() if database == "postgresql" else None
                    site_dir = make_site(Path(tmp), port, args.connections, size, url)
                    result = run_ours(site_dir)
                    assert result["summary"]["sent"] == size, result["summary"]
                    peaks.append(result["rss_peak_kb"] / 1024)
                    print(
                        f"  peak RSS {peaks[-1]:.1f} MB (before sending {result['rss_before_kb'] / 1024:.1f} MB), "
                        f"{size / result['seconds']:.0f} msg/s"
                    )
            print(f"peak memory growth ({database}) {sizes[0]} -> {sizes[1]}: {peaks[1] - peaks[0]:+.1f} MB   "
                  "(target <= 20 MB)")
    finally:
        if postgres:
            postgres.stop()
        received = stop_sink(sink)
        print(f"\nthe sink received {received} messages in all")


if __name__ == "__main__":
    main()
