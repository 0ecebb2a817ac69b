# Two commands set everything up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NL     := $(VENV)/bin/newsletter
SITE   := examples/clinic
ISSUE  := issues/2026-11.toml
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install install-test system-deps bench-deps bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@# What pip does for a regular install: with PYTHONDONTWRITEBYTECODE set (as on some CI
	@# machines), every command would otherwise compile the project's modules again (70 ms).
	$(PY) -m compileall -q newsletters recipients foundation >/dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,postgres]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The tests drive a real browser, SpamAssassin, Dovecot (IMAP and POP3) and PostgreSQL:
# install Debian's packages when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v spamassassin >/dev/null 2>&1 || missing="$$missing spamassassin"; \
	[ -x /usr/lib/dovecot/imap ] || missing="$$missing dovecot-imapd"; \
	[ -x /usr/lib/dovecot/pop3 ] || missing="$$missing dovecot-pop3d"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The example site has no .env: its signed links use this key unless SECRET_KEY is set.
demo: export SECRET_KEY ?= demo-only-key-for-the-example-site-never-use-for-real
demo: install
	@rm -rf $(SITE)/newsletter.db $(SITE)/newsletter.db-* $(SITE)/newsletter.db.send-lock $(SITE)/outbox $(SITE)/build $(SITE)/reports
	$(NL) --site $(SITE) build $(ISSUE)
	$(NL) --site $(SITE) recipients import subscribers.csv
	$(NL) --site $(SITE) send $(ISSUE) --yes
	@echo
	@echo "Built issue:   $(SITE)/build/2026-11/ (email.html, email.txt, web.html, sample.eml; email.template.* for sending)"
	@echo "Subscribers:   $(SITE)/newsletter.db (try: $(NL) --site $(SITE) recipients list)"
	@echo "Sent messages: $(SITE)/outbox/new/ (a maildir: no SMTP_HOST is set)"
	@echo "Send report:   $(SITE)/reports/ (and: $(NL) --site $(SITE) sends)"
	@echo "Preview:       $(NL) --site $(SITE) preview $(ISSUE)"

# Tests needing PostgreSQL, Dovecot, Chromium or SpamAssassin must run here, never be skipped (tests/system_parts.py).
test: install-test system-deps
	NEWSLETTER_REQUIRE_SERVERS=1 $(PY) -m pytest

# The benchmarks' references: Postfix's smtp-source (only the client programs are used:
# installed with "No configuration", so no mail server starts) and a throwaway PostgreSQL.
bench-deps:
	@missing=""; \
	command -v smtp-source >/dev/null 2>&1 || [ -x /usr/sbin/smtp-source ] || missing="$$missing postfix"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: install bench-deps
	$(PY) -m pip install --quiet -e '.[postgres]'
	@# Sources edited since `make install` would otherwise be compiled again by every sender it starts.
	$(PY) -m compileall -q newsletters recipients foundation >/dev/null
	$(PY) bench/build.py
	$(PY) bench/send.py
	$(PY) bench/scale.py
	$(PY) bench/preview.py
	$(PY) bench/send_startup.py
	$(PY) bench/bounces.py

clean:
	rm -rf $(VENV) $(SITE)/build $(SITE)/outbox $(SITE)/reports $(SITE)/newsletter.db $(SITE)/newsletter.db-* $(SITE)/newsletter.db.send-lock
