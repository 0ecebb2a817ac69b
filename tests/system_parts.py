"""Marks for tests that need a Debian program: skipped with the reason on a bare machine, never under ``make test``.

``make test`` installs Chromium and SpamAssassin first (``make system-deps``) and sets
NEWSLETTER_REQUIRE_SERVERS=1, as for PostgreSQL and Dovecot: there a missing program
makes these tests run and fail, instead of a green run that checked less.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.chromium import CHROMIUM


def needs(present: bool, reason: str) -> pytest.MarkDecorator:
    required = os.environ.get("NEWSLETTER_REQUIRE_SERVERS") == "1"
    return pytest.mark.skipif(not present and not required, reason=reason)


needs_chromium = needs(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium: run `make system-deps` "
                                          "(sudo apt-get install chromium)")
needs_spamassassin = needs(shutil.which("spamassassin") is not None,
                           "needs Debian's spamassassin: run `make system-deps` (sudo apt-get install spamassassin)")
