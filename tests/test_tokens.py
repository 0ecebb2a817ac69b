"""Signed links: what ``recipients.tokens`` makes is what itsdangerous makes, and reads back."""

from __future__ import annotations

import secrets

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from recipients.tokens import UNSUBSCRIBE_SALT, LinkSerializer, read_unsubscribe_token

KEY = "test-key-for-signed-links-0123456789"


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_796_400_000)


def test_links_are_byte_for_byte_what_itsdangerous_makes_so_old_links_keep_working(fixed_clock):
    ours = LinkSerializer(KEY, salt=UNSUBSCRIBE_SALT)
    theirs = URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT)
    for _ in range(2000):
        public_id, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(12)
        assert ours.dumps(public_id) == theirs.dumps(public_id)
        assert ours.dumps([public_id, nonce]) == theirs.dumps([public_id, nonce])


def test_a_payload_zlib_would_have_shortened_still_reads_back_and_so_does_itsdangerous_own(fixed_clock):
    ours = LinkSerializer(KEY, salt=UNSUBSCRIBE_SALT)
    theirs = URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT)
    repetitive = "a" * 200

    assert not ours.dumps(repetitive).startswith(".")  # not compressed, so longer than itsdangerous's
    assert theirs.dumps(repetitive).startswith(".")
    assert read_unsubscribe_token(KEY, ours.dumps(repetitive)) == repetitive
    assert read_unsubscribe_token(KEY, theirs.dumps(repetitive)) == repetitive  # a compressed one still reads
