"""A server that refuses, greylists, hangs up, answers garbage or too late, and a sender killed mid-way.

Whatever it does, two things must hold after any number of resumes:
no recipient has two copies (counting, strictly, every message whose data
reached the server and was not refused), and every eligible subscriber without
an accepted message is in the report under a state that says why.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from newsletters.config import Site
from newsletters.delivery import prepare_send
from tests.send_fixtures import (
    ISSUE,
    add_ineligible,
    add_subscribers,
    latest_report,
    make_send_site,
    newsletter,
    smtp_settings,
    start_newsletter,
    write_env,
)
from tests.smtp_servers import HostileServer

WEIGHTS = {
    "accept": 12.0,
    "mail-451": 0.5,
    "rcpt-451": 1.5,
    "rcpt-421": 0.5,
    "rcpt-drop": 0.5,
    "data-drop": 0.5,
    "body-drop": 0.5,
    "end-451": 1.0,
    "end-552": 0.3,
    "end-drop": 0.4,
    "end-slow": 0.2,
    "end-garbage": 0.2,
}
REPORTED = {"sent", "deferred", "failed", "bounced", "skipped", "unknown"}



def hostile(seed: int, bounced: set[str]) -> HostileServer:
    return HostileServer(
        seed=seed, weights=WEIGHTS, greet_421=0.05, max_per_connection=7, bounced_addresses=bounced, slow_seconds=0.6
    )


def settings(port: int) -> dict:
    return smtp_settings(port, SMTP_CONNECTIONS=3, SMTP_TIMEOUT=0.3, SEND_MAX_ATTEMPTS=4, SEND_RETRY_DELAY=0.01)


def check_invariants(server: HostileServer, report: dict, readers: list[str], ineligible: list[str]) -> dict:
    delivered = server.delivered
    assert max(delivered.values(), default=0) <= 1, f"two copies: {[a for a, n in delivered.items() if n > 1]}"
    assert not set(ineligible) & set(delivered)
    not_sent = {row["email"]: row for row in report["not_sent"]}
    assert set(not_sent) <= set(readers)
    assert {row["state"] for row in not_sent.values()} <= REPORTED - {"sent"}
    # Everyone without a message is accounted for by name...
    assert set(readers) - set(delivered) <= set(not_sent)
    # ...and everyone the report calls sent has exactly one.
    sent = set(readers) - set(not_sent)
    assert all(delivered[a] == 1 for a in sent)
    # What the server has but we could not confirm can only be "unknown".
    assert all(not_sent[a]["state"] == "unknown" for a in set(delivered) & set(not_sent))
    assert report["summary"]["sent"] == len(sent)
    return not_sent


@pytest.mark.parametrize("seed", [3, 11, 2024])
def test_hostile_server_never_gets_two_copies_and_the_report_accounts_for_everyone(site_dir, seed):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 80)
    ineligible = add_ineligible(site_dir)
    server = hostile(seed, bounced={readers[5], readers[50]})
    with server as (host, port):
        write_env(site_dir, **settings(port))
        site = Site.load(site_dir)
        for _ in range(4):  # the user runs send again until nothing is left to retry
            with prepare_send(site, site_dir / ISSUE) as plan:
                if plan.to_send == 0:
                    break
                plan.execute(handle_signals=False)
    report = latest_report(site_dir)
    not_sent = check_invariants(server, report, readers, ineligible)
    assert {not_sent[readers[5]]["state"], not_sent[readers[50]]["state"]} == {"bounced"}
    assert sum(server.actions[a] for a in WEIGHTS if a != "accept") > 10  # it really was hostile


def test_hostile_server_and_a_kill_in_the_middle(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 120)
    ineligible = add_ineligible(site_dir)
    server = hostile(7, bounced={readers[9]})
    with server as (host, port):
        write_env(site_dir, **settings(port))
        process = start_newsletter(site_dir, "send", ISSUE, "--yes")
        deadline = time.monotonic() + 60
        while sum(server.delivered.values()) < 40 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert process.poll() is None, process.communicate()
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        for _ in range(4):
            result = newsletter(site_dir, "send", ISSUE, "--yes")
            left = latest_report(site_dir)["left"]
            assert result.returncode == (0 if left == 0 else 3), result.stderr  # 3: someone is left
            if latest_report(site_dir)["summary"]["deferred"] == 0:
                break
    report = latest_report(site_dir)
    check_invariants(server, report, readers, ineligible)
    assert report["sessions"] >= 2
