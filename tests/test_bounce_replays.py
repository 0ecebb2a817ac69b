"""The replay stores: a key is claimed once until it expires, across threads, processes and restarts."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from newsletters.bounce_intake.errors import WebhookReplayed
from newsletters.bounce_intake.replays import FileReplayStore, MemoryReplayStore
from newsletters.bounce_intake.settings import WebhookSettings
from newsletters.bounce_intake.webhooks import verify_mailgun
from newsletters.config import Site
from tests.relay_posts import Mailgun, mailgun_failed


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "file"])
def store_and_clock(request, tmp_path):
    clock = Clock()
    if request.param == "memory":
        yield MemoryReplayStore(clock=clock), clock
    else:
        store = FileReplayStore(tmp_path / "replays.sqlite", clock=clock)
        yield store, clock
        store.close()


def test_a_key_is_claimed_once_until_it_expires(store_and_clock):
    store, clock = store_and_clock

    assert store.claim("mailgun:token:a", until=clock.now + 60) is True
    assert store.claim("mailgun:token:a", until=clock.now + 60) is False
    assert store.claim("mailgun:token:b", until=clock.now + 60) is True
    clock.now += 61
    assert store.claim("mailgun:token:a", until=clock.now + 60) is True


def test_a_released_key_may_be_claimed_again(store_and_clock):
    store, clock = store_and_clock
    store.claim("ses:1", until=clock.now + 60)

    store.release("ses:1")

    assert store.claim("ses:1", until=clock.now + 60) is True


def test_of_many_threads_claiming_one_key_exactly_one_wins(store_and_clock):
    store, clock = store_and_clock

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.claim("same", until=clock.now + 60), range(64)))

    assert results.count(True) == 1


def _claim_all(path: str, keys: list[str]) -> list[str]:
    store = FileReplayStore(path)
    won = [key for key in keys if store.claim(key, until=4_000_000_000.0)]
    store.close()
    return won


def test_processes_sharing_the_file_never_claim_the_same_key_twice(tmp_path):
    path = str(tmp_path / "replays.sqlite")
    FileReplayStore(path).close()
    keys = [f"sendgrid:event:{n}" for n in range(100)]
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(4, mp_context=context) as pool:
        winners = [key for won in pool.map(_claim_all, [path] * 4, [keys] * 4) for key in won]

    assert sorted(winners) == sorted(keys)


def test_a_replay_is_refused_after_a_restart_with_the_file_store(site_dir, monkeypatch):
    mailgun = Mailgun()
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", mailgun.key)
    monkeypatch.setenv("WEBHOOK_REPLAY_FILE", "webhook-replays.sqlite")
    post = mailgun.post(mailgun_failed("a@example.net"))

    before = WebhookSettings.from_site(Site.load(site_dir))
    assert len(verify_mailgun({}, post, before).events) == 1
    after_restart = WebhookSettings.from_site(Site.load(site_dir))

    assert (site_dir / "webhook-replays.sqlite").is_file()
    with pytest.raises(WebhookReplayed):
        verify_mailgun({}, post, after_restart)
