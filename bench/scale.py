"""Several senders on one PostgreSQL: against Postfix's smtp-source, linear in senders, and 1,000,000 on paper.

    .venv/bin/python bench/scale.py [--senders CORES] [-n 10000] [--connections 4]
    .venv/bin/python bench/scale.py --linear 1,2,4 [-n 2000] [--connections 4] [--delay 0.05]

The default run, all in one go, to the bench sink (bench/smtp_sink.py) in another process
(1 and 2 are bench/send.py's part 5, ``bench/send.py --smtp-source``):

1. ours: ``--senders`` (default: as many as cores) ``newsletter send ISSUE --yes``
   processes started together on one throwaway PostgreSQL (bench/postgres_server.py,
   fsync on) run of N subscribers, timed from the first start to the last exit: whole
   processes. The issue is built beforehand, as in the monthly workflow.
2. the reference: ``smtp-source`` (Debian package ``postfix``) sending N messages of
   the same size (the issue's sample message) over the same total number of
   connections (senders x ``--connections``, each kept open: ``-d``) to the same sink,
   timed as a whole process too. Printed with the ratio (target >= 0.8).
3. the costs: where the CPU went (senders, sink, PostgreSQL), the senders' start-up
   (one more ``send``, which finds nothing left), their peak memory, and PostgreSQL's
   CPU, WAL and commits per message;
4. on paper: from those costs, the time to send to 1,000,000 subscribers by relay
   latency and sender count, and the database load. The model is stated with the table.

``--linear 1,2,4`` measures the simulation the model rests on: N senders share one run
of N subscribers to a sink that takes ``--delay`` seconds per message (a relay that
takes its time), throughput from the first sender starting its send to the last one
ending, and its ratio to N times one sender's (target >= 0.8).
Wall-clock numbers depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres_server import TemporaryPostgres  # noqa: E402  (needs ROOT on the path)
from bench.send import make_site, start_sink, stop_sink, versus_smtp_source  # noqa: E402

LIST = 1_000_000
LATENCIES = (0.05, 0.2, 1.0)  # a relay's seconds per message on one connection
CONNECTIONS = (4, 16)  # per sender
SENDER_COUNTS = (1, 2, 4, 8)
DATABASE_CORES = 4


# -- 1,000,000 subscribers, on paper ---------------------------------------------------------

def extrapolate(costs: dict) -> None:
    """The time and load of a 1,000,000-subscriber send, from the costs measured in this run.

    Model: a sender is one process, so at most one core of Python (the GIL): it
    sends at most 1 / (its CPU per message) per second, and at most
    connections / latency against a relay taking ``latency`` per message on each
    connection. Senders add up until the database's CPU (``DATABASE_CORES``
    cores, its CPU per message as measured) is the limit. Start-up is added once.
    """
    per_core = 1 / costs["sender_cpu_per_message"]
    database = DATABASE_CORES / costs["db_cpu_per_message"]
    print(f"\n-- {LIST:,} subscribers, on paper (from this run's costs; model in bench/scale.py:extrapolate)")
    print(f"one sender: start-up {costs['startup_seconds']:.1f} s, {costs['sender_cpu_per_message'] * 1e6:.0f} µs CPU "
          f"per message (at most {per_core:,.0f} msg/s on one core), peak memory {costs['sender_rss_mb']:.0f} MB "
          "(flat in list size: bench/send.py --database postgresql)")
    print(f"PostgreSQL per message: {costs['db_cpu_per_message'] * 1e6:.0f} µs CPU, "
          f"{costs['wal_per_message']:,.0f} bytes of WAL, {costs['commits_per_message']:.2f} commits; "
          f"for the list: {costs['db_cpu_per_message'] * LIST / 60:.0f} CPU minutes, "
          f"{costs['wal_per_message'] * LIST / 1e9:.1f} GB of WAL, {costs['commits_per_message'] * LIST:,.0f} commits; "
          f"{DATABASE_CORES} database cores carry at most {database:,.0f} msg/s")
    header = " | ".join(f"{s} sender{'s' * (s > 1)}" for s in SENDER_COUNTS)
    print(f"\n| relay latency per message | connections per sender | {header} |")
    print("| --- | --- |" + " --- |" * len(SENDER_COUNTS))
    for latency in (*LATENCIES, 0.0):
        for connections in CONNECTIONS if latency else ("any",):
            cells = []
            for senders in SENDER_COUNTS:
                relay = connections / latency if latency else float("inf")  # no relay: CPU-bound
                rate = min(senders * min(relay, per_core), database)
                cells.append(f"{_duration(LIST / rate + costs['startup_seconds'])} ({rate:,.0f}/s)")
            name = f"{latency * 1000:.0f} ms" if latency else "none (this bench sink)"
            print(f"| {name} | {connections} | " + " | ".join(cells) + " |")
    print("\nDatabase connections: each sender holds one per SMTP connection plus two.")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


# -- linear in senders: the simulation ------------------------------------------------------

def run_child_senders(site_dir: Path, senders: int) -> tuple[float, list[int]]:
    """N senders (bench/send.py's timed child) started together: seconds from first send to last end, shares."""
    children = [
        subprocess.Popen([sys.executable, str(ROOT / "bench" / "send.py"), "--child", str(site_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=site_dir)
        for _ in range(senders)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=3600)
        if child.returncode != 0:
            raise SystemExit(f"a sender failed:\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return seconds, [r["session_sent"] for r in results]


def linear(counts: list[int], n: int, connections: int, delay: float) -> None:
    """Throughput of 1, 2, … senders on one PostgreSQL run against a sink that takes ``delay`` per message."""
    sink, port = start_sink(delay)
    rates = {}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: print(f"\nthe sink received {stop_sink(sink)} messages in all"))
        postgres = stack.enter_context(TemporaryPostgres(durable=True))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-linear-")))
        for k, senders in enumerate(counts):
            print(f"setting up {n} subscribers for {senders} sender(s) …", flush=True)
            site_dir = make_site(tmp / f"s{k}", port, connections, n, postgres.create_database(f"senders_{k}"))
            seconds, shares = run_child_senders(site_dir, senders)
            assert sum(shares) == n, shares
            rates[senders] = n / seconds
            print(f"  {senders} sender(s) x {connections} connections: {rates[senders]:.0f} msg/s "
                  f"({seconds:.1f} s; shares {shares})", flush=True)
    base = rates[counts[0]] / counts[0]
    print(f"\nsink delay {delay * 1000:.0f} ms per message, {n} messages, {connections} connections per sender "
          f"(the model's ceiling for one sender: {connections / delay:.0f} msg/s)")
    for senders, rate in rates.items():
        print(f"{senders} sender(s): {rate:6.0f} msg/s = {rate / base / senders:.2f} x linear   (target >= 0.8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, help="messages (default 10,000; 2,000 with --linear)")
    parser.add_argument("--senders", type=int, default=os.cpu_count() or 1, help="send processes (default: cores)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per sender")
    parser.add_argument("--linear", help="e.g. 1,2,4: only the senders-against-a-slow-relay simulation")
    parser.add_argument("--delay", type=float, default=0.05, help="--linear: the sink's seconds per message")
    args = parser.parse_args()
    if args.linear:
        return linear([int(x) for x in args.linear.split(",")], args.n or 2000, args.connections, args.delay)
    extrapolate(versus_smtp_source(args.n or 10_000, args.senders, args.connections))


if __name__ == "__main__":
    main()
