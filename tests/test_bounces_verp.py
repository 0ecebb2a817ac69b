"""The signed VERP return path: short enough for any server, unforgeable, robust to lower-casing."""

from __future__ import annotations

import pytest

from newsletters.bounces.reader import read_message
from newsletters.bounces.verp import make_return_path, read_return_path
from newsletters.errors import ConfigError

SECRET = "verp-tests-secret-key-0123456789"


def test_a_return_path_names_its_run_and_subscriber_and_fits_in_a_local_part():
    address = make_return_path("bounces@larkfield-clinic.example.com", 2**40, 2**62, SECRET)
    local, domain = address.split("@")
    assert domain == "larkfield-clinic.example.com" and local.startswith("bounces+")
    assert len(local) <= 64
    assert read_return_path(address, SECRET) == (2**40, 2**62)
    assert read_return_path(address.upper(), SECRET) == (2**40, 2**62), "servers that upper-case local parts"
    assert read_return_path(f"<{address}>", SECRET) == (2**40, 2**62)


def test_a_changed_id_a_changed_signature_or_another_key_reads_as_nothing():
    address = make_return_path("bounces@example.com", 7, 42, SECRET)
    other = make_return_path("bounces@example.com", 7, 43, SECRET)
    signature, other_signature = address.split("@")[0][-16:], other.split("@")[0][-16:]
    assert read_return_path(other.replace(other_signature, signature), SECRET) is None, "43 with 42's signature"
    assert read_return_path(address.replace(signature, signature[::-1]), SECRET) is None
    assert read_return_path(address, SECRET + "x") is None
    assert read_return_path("bounces@example.com", SECRET) is None
    assert read_return_path("bounces+garbage@example.com", SECRET) is None


@pytest.mark.parametrize("base", ["bounces+x@example.com", "no-at-sign", "b\r\nBcc: x@example.com@example.com",
                                  "a" * 50 + "@example.com"])
def test_a_bad_bounce_address_is_refused_with_a_clear_error(base):
    with pytest.raises(ConfigError) as caught:
        make_return_path(base, 1, 1, SECRET)
    assert caught.value.where == "BOUNCE_ADDRESS"


def test_the_reader_finds_the_token_in_the_envelope_recipient_headers():
    address = make_return_path("bounces@example.com", 3, 99, SECRET)
    raw = (f"X-Original-To: {address}\nFrom: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\n"
           "Sorry, no mailbox here by that name. (#5.1.1)\n").encode()
    token = read_message(raw).ids.verp_token
    assert read_return_path(f"bounces+{token}@example.com", SECRET) == (3, 99)


def test_an_envelope_recipient_given_by_the_caller_wins_over_the_headers():
    address = make_return_path("bounces@example.com", 5, 6, SECRET)
    raw = b"To: bounces+stale-token@example.com\nFrom: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nx\n"
    token = read_message(raw, envelope_to=address).ids.verp_token
    assert read_return_path(f"bounces+{token}@example.com", SECRET) == (5, 6)
