"""How fast ``newsletter send`` delivers, against the limit and against the naive way, and what it costs in memory.

    .venv/bin/python bench/send.py [-n 10000] [--connections 4] [--naive 40] [--memory 1000,100000]
                                   [--database sqlite|postgresql|both] [--rounds 1]
                                   [--smtp-source [--senders CORES]]   (--rounds N: medians of N alternated runs)

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
   subscribers (fresh database each), and the difference;
5. with ``--smtp-source``, several senders against Postfix's own benchmark
   client: ``--senders`` (default: as many as cores) whole ``newsletter send
   ISSUE --yes`` processes on one throwaway PostgreSQL run of N subscribers,
   from the first start to the last exit, then ``smtp-source`` (Debian package
   ``postfix``) sending N messages of the same size over the same total number
   of connections to the same sink, and the ratio (target >= 0.8), with where
   the CPU went and when (from the ledger) the first and last messages were
   handed over. With ``--rounds N`` the two alternate N times, ours on a fresh
   copy of the list each time, and the medians are compared.
   ``bench/scale.py`` runs it too, and extrapolates from it.

With ``--database postgresql`` the ledger lives on a throwaway PostgreSQL started
for the run (bench/postgres_server.py, as the tests start it: initdb into a
temporary folder, loopback only; a fresh database per site); ``both`` runs ours
on SQLite and on PostgreSQL in the same run and prints PostgreSQL / SQLite;
``--rounds N`` runs ours N times on each, alternating, and reports the medians
(one run varies by ±8% with the machine).

Targets: ours >= 0.8x the limit, >= 20x the naive loop, peak growth <= 20 MB;
on PostgreSQL >= 0.8x ours on SQLite; several senders >= 0.8x smtp-source.
Several senders against a slow relay, and 1,000,000 on paper: bench/scale.py.
Wall-clock numbers depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import secrets
import shutil
import smtplib
import statistics
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

from bench.postgres_server import TemporaryPostgres, process_cpu_seconds  # noqa: E402  (needs ROOT on the path)

EXAMPLE = ROOT / "examples" / "clinic"
ISSUE = "issues/2026-11.toml"
SECRET = "bench-secret-key-" + "x" * 24


def make_site(folder: Path, port: int, connections: int, subscribers: int, database_url: str | None = None) -> Path:
    """The example site sending to the sink; its own SQLite file, or ``database_url`` (an empty database)."""
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


def start_sink(delay: float = 0.0) -> tuple[subprocess.Popen, int]:
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), "--delay", str(delay)],
                            stdout=subprocess.PIPE, text=True)
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
        wall0 = time.time()
        t0 = time.perf_counter()
        report = plan.execute(handle_signals=False)
        seconds = time.perf_counter() - t0
        wall1 = time.time()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
                "summary": report.summary,
                "session_sent": report.session.get("sent", 0),
                "started": wall0,
                "ended": wall1,
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


def run_memory(port: int, connections: int, sizes: list[int], database) -> None:
    """Peak RSS of a send to each list size (fresh database each), and the growth between them."""
    peaks = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-send-mem-") as tmp:
            print(f"\nmemory: sending to {size} subscribers …", flush=True)
            site_dir = make_site(Path(tmp), port, connections, size, database())
            result = run_ours(site_dir)
            assert result["summary"]["sent"] == size, result["summary"]
            peaks.append(result["rss_peak_kb"] / 1024)
            print(
                f"  peak RSS {peaks[-1]:.1f} MB (before sending {result['rss_before_kb'] / 1024:.1f} MB), "
                f"{size / result['seconds']:.0f} msg/s"
            )
    print(f"peak memory growth {sizes[0]} -> {sizes[1]}: {peaks[1] - peaks[0]:+.1f} MB   (target <= 20 MB)")


# -- 5: several whole senders on one PostgreSQL, against Postfix's smtp-source -----------------

def run_send_processes(site_dir: Path, senders: int) -> tuple[float, list[dict]]:
    """``newsletter send ISSUE --yes`` in ``senders`` processes started together.

    Returns the seconds from the first start to the last exit, and per process its
    CPU seconds and peak RSS (from ``wait4``, so nothing else's).
    """
    command = [sys.executable, "-m", "newsletters", "--site", str(site_dir), "send", ISSUE, "--yes"]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        pids = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT).pid for _ in range(senders)]
        usage = []
        for pid in pids:
            _, status, rusage = os.wait4(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                log.seek(0)
                raise SystemExit(f"a sender exited with {os.waitstatus_to_exitcode(status)}:\n{log.read().decode()}")
            usage.append({"cpu_seconds": rusage.ru_utime + rusage.ru_stime, "rss_mb": rusage.ru_maxrss / 1024})
        return time.perf_counter() - t0, usage


def run_smtp_source(port: int, message_file: Path, count: int, sessions: int) -> tuple[float, float]:
    """Postfix's smtp-source: ``count`` messages over ``sessions`` parallel kept-open connections.

    Returns its whole-process seconds and CPU seconds.
    """
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not Path(binary).exists():
        raise SystemExit("smtp-source is missing: install Debian's postfix package (make bench-deps)")
    command = [binary, "-d", "-s", str(sessions), "-m", str(count), "-F", str(message_file),
               "-f", "news@larkfield-clinic.example.com", "-t", "reader@example.org", f"127.0.0.1:{port}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def versus_smtp_source(n: int, senders: int, connections: int, rounds: int = 1) -> dict:
    """Whole ``newsletter send`` processes on one PostgreSQL run against smtp-source; the costs measured.

    With ``rounds`` > 1 the two alternate, each of ours on a fresh copy of the same
    database, and the medians are compared: smtp-source alone varies by up to a fifth from
    one run to the next on a small machine (3.3-4.1 s for the same 10,000 messages).
    """
    sink, port = start_sink()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: print(f"\nthe sink received {stop_sink(sink)} messages in all"))
        postgres = stack.enter_context(TemporaryPostgres(durable=True))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        print(f"setting up {n} subscribers on PostgreSQL …", flush=True)
        template_url = postgres.create_database("scale")
        site_dir = make_site(tmp, port, connections, n, template_url)
        subprocess.run([sys.executable, "-m", "newsletters", "--site", str(site_dir), "build", ISSUE],
                       check=True, capture_output=True)
        # A list imported long before its send has been vacuumed and analysed by then; a fresh import's
        # autovacuum fell into the first round (the slowest of three, by up to half a second, in 5 of 5 runs).
        postgres.admin("VACUUM ANALYZE", database="scale")
        message_file = tmp / "message.eml"
        message_file.write_bytes(sample_message(site_dir)[0])
        size_kb = message_file.stat().st_size / 1024
        print(f"{senders} sender(s) x {connections} connections, {n} messages of {size_kb:.1f} KB, "
              f"{rounds} round(s) …", flush=True)
        env_file = site_dir / ".env"
        env_text = env_file.read_text()
        rows = []
        for number in range(1, rounds + 1):
            database = f"scale_{number}"  # a fresh copy of the list, so every round sends the same run
            env_file.write_text(env_text.replace(template_url, postgres.create_database(database, template="scale")))
            row = _ours_then_theirs(postgres, database, sink, port, site_dir, message_file, n, senders, connections)
            rows.append(row)
            if rounds > 1:
                print(f"  round {number}: ours {row['ours']:.2f} s, smtp-source {row['theirs']:.2f} s, "
                      f"ratio {row['theirs'] / row['ours']:.2f}", flush=True)

    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    ours, theirs = median["ours"], median["theirs"]
    what = f"median of {rounds}, " if rounds > 1 else ""
    print(f"\nours: {senders} x newsletter send --yes, whole processes: {n / ours:6.0f} msg/s ({what}{ours:.2f} s)   "
          f"CPU s: senders {median['senders_cpu']:.2f}, sink {median['ours_sink_cpu']:.2f}, "
          f"PostgreSQL {median['db_cpu']:.2f}")
    print(f"  of which: the first message handed over after {median['first_handover']:.2f} s, the last after "
          f"{median['last_handover']:.2f} s ({n / (median['last_handover'] - median['first_handover']):.0f} msg/s "
          f"in between), the last sender gone at {ours:.2f} s")
    print(f"smtp-source -d -s {senders * connections} -m {n}, whole process:    {n / theirs:6.0f} msg/s "
          f"({what}{theirs:.2f} s)   CPU s: smtp-source {median['theirs_cpu']:.2f}, sink {median['theirs_sink_cpu']:.2f}")
    print(f"ours / smtp-source = {theirs / ours:.2f}   (target >= 0.8)")
    return {
        "messages": n,
        "connections": connections,
        "startup_seconds": median["startup_seconds"],
        "sender_cpu_per_message": max(median["senders_cpu"] - senders * median["startup_cpu"], 0.0) / n,
        "sender_rss_mb": median["rss_mb"],
        "db_cpu_per_message": median["db_cpu"] / n,
        "wal_per_message": median["wal_bytes"] / n,
        "commits_per_message": median["commits"] / n,
    }


def _ours_then_theirs(postgres, database: str, sink, port: int, site_dir: Path, message_file: Path, n: int,
                      senders: int, connections: int) -> dict[str, float]:
    """One round: our senders on ``database`` (the site's), then smtp-source; seconds and costs of each.

    Each starts on a quiet server: the round's copy is dropped once measured, and a
    checkpoint goes first. Left in place, the server's after-work on the copy just sent
    (autovacuum of 20,000 updated rows, dirty pages) fell into the next timed run: of two
    identical sends back to back, the second took 4.99 s against 4.41 (two pairs).
    """
    postgres.admin("CHECKPOINT")
    sink_cpu, db = process_cpu_seconds(sink.pid), postgres.counters(database)
    started = datetime.now(timezone.utc)
    ours, usage = run_send_processes(site_dir, senders)
    db_after = postgres.counters(database)
    ours_sink_cpu = process_cpu_seconds(sink.pid) - sink_cpu
    first, last = handover_times(postgres.url(database))
    # A sender with nothing left to send: start-up alone, to leave out of the per-message figures.
    startup, (idle,) = run_send_processes(site_dir, 1)
    postgres.admin(f'DROP DATABASE "{database}" WITH (FORCE)', "CHECKPOINT")

    sink_cpu = process_cpu_seconds(sink.pid)
    theirs, theirs_cpu = run_smtp_source(port, message_file, n, senders * connections)
    return {
        "ours": ours, "theirs": theirs, "theirs_cpu": theirs_cpu,
        "theirs_sink_cpu": process_cpu_seconds(sink.pid) - sink_cpu, "ours_sink_cpu": ours_sink_cpu,
        "senders_cpu": sum(u["cpu_seconds"] for u in usage), "startup_seconds": startup, "startup_cpu": idle["cpu_seconds"],
        "rss_mb": max(u["rss_mb"] for u in usage),
        "db_cpu": db_after["cpu_seconds"] - db["cpu_seconds"],
        "wal_bytes": db_after["wal_bytes"] - db["wal_bytes"], "commits": db_after["commits"] - db["commits"],
        "first_handover": (first - started).total_seconds(), "last_handover": (last - started).total_seconds(),
    }


def handover_times(database_url: str) -> tuple[datetime, datetime]:
    """When the run's first and last messages were handed over, as the ledger says."""
    import sqlalchemy as sa

    from foundation.tables import deliveries

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(deliveries.c.handed_at), sa.func.max(deliveries.c.handed_at))).one()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="messages for ours and for the limit")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--naive", type=int, default=40, help="recipients for the naive loop")
    parser.add_argument("--memory", default="1000,100000", help="two list sizes for the memory test ('' to skip)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="where the ledger lives: a SQLite file, a throwaway PostgreSQL, or each in turn")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run ours this many times per database (with --smtp-source: ours and smtp-source), "
                             "alternating; medians are reported")
    parser.add_argument("--smtp-source", action="store_true",
                        help="5: several whole senders on PostgreSQL against Postfix's smtp-source")
    parser.add_argument("--senders", type=int, default=os.cpu_count() or 1, help="5: send processes (default: cores)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_send(args.child)

    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    sink, port = start_sink()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: print(f"\nthe sink received {stop_sink(sink)} messages in all"))
        postgres = stack.enter_context(TemporaryPostgres(durable=True)) if "postgresql" in kinds else None
        numbers = itertools.count(1)

        def database_for(kind: str):
            """A function giving a fresh, empty database of ``kind`` per site (None: the site's SQLite file)."""
            return lambda: None if kind == "sqlite" else postgres.create_database(f"bench_{next(numbers)}")

        runs: dict[str, list[float]] = {kind: [] for kind in kinds}
        with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
            for round_number in range(1, args.rounds + 1):  # alternating, so drift in the machine hits both
                for kind in kinds:
                    print(f"setting up {args.n} subscribers on {kind} …", flush=True)
                    site_dir = make_site(Path(tmp) / f"{kind}{round_number}", port, args.connections, args.n,
                                         database_for(kind)())
                    ours = run_ours(site_dir)
                    assert ours["summary"]["sent"] == args.n, ours["summary"]
                    runs[kind].append(args.n / ours["seconds"])
                    print(f"  ours on {kind}: {runs[kind][-1]:.0f} msg/s ({ours['cpu_seconds']:.1f} s CPU)", flush=True)
                if len(kinds) == 2:
                    print(f"  round {round_number}: postgresql / sqlite = "
                          f"{runs['postgresql'][-1] / runs['sqlite'][-1]:.2f}", flush=True)
            rates = {kind: statistics.median(values) for kind, values in runs.items()}
            message, build = sample_message(site_dir)
            print(f"message size {len(message) / 1024:.1f} KB, {args.connections} connections, sink on port {port}")
            raw_rate = run_raw(port, message, args.n, args.connections)
            naive_rate = run_naive(site_dir, port, args.naive)

            print()
            for kind, rate in rates.items():
                print(f"ours (newsletter send, {args.n} personalised, ledger on {kind}):  {rate:8.0f} msg/s")
            print(f"limit (smtplib, one pre-built message):            {raw_rate:8.0f} msg/s")
            print(f"naive (render + inline + connect per recipient):   {naive_rate:8.1f} msg/s  ({args.naive} recipients)")
            for kind, rate in rates.items():
                print(f"ours on {kind} / limit = {rate / raw_rate:.2f}   (target >= 0.8)")
                print(f"ours on {kind} / naive = {rate / naive_rate:.0f}x   (target >= 20x)")
            if len(rates) == 2:
                each = [pg / lite for pg, lite in zip(runs["postgresql"], runs["sqlite"])]
                print(f"ours on postgresql / ours on sqlite = {statistics.median(each):.2f}   (target >= 0.8)"
                      + (f"; median of {args.rounds} rounds: " + ", ".join(f"{r:.2f}" for r in each)
                         if args.rounds > 1 else ""))

        sizes = [int(s) for s in args.memory.split(",") if s.strip()]
        if len(sizes) == 2:
            for kind in kinds:
                print(f"\n-- memory, ledger on {kind}")
                run_memory(port, args.connections, sizes, database_for(kind))

    if args.smtp_source:
        print(f"\n-- {args.senders} senders on PostgreSQL against smtp-source")
        versus_smtp_source(args.n, args.senders, args.connections, args.rounds)


if __name__ == "__main__":
    main()
