"""``newsletter init``: a new site folder that builds as soon as it is filled in."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .errors import ConfigError

NEWSLETTER_TOML = """\
# What your clinic is. Everything here may be public; secrets go in .env.
[site]
name = "Your Clinic"
website = "https://www.example.com"        # base for relative links in articles
postal_address = "1 High Street, Town, AB1 2CD, United Kingdom"
phone = "01234 567890"
logo_url = ""                              # an https URL; leave empty to show the name
country = "GB"                             # GB turns on the UK medicines-advertising checks
language = "en-GB"

[sender]
name = "Your Clinic"
address = "newsletter@your-clinic.example"  # refused by `send` until it is your own domain
reply_to = ""

[brand]
primary_color = "#1f4e5f"
accent_color = "#b5593c"
background_color = "#f4f1ec"
text_color = "#222222"

[footer]
text = ""
why = "You receive this e-mail because you subscribed to our newsletter."

[subscribe]
consent_text = "Yes, please e-mail me the monthly newsletter with news and offers. I can unsubscribe at any time."
double_opt_in = true
"""

ENV_EXAMPLE = """\
# Copy to .env and fill in. The real environment overrides anything set here.
# Never commit .env.

# Base of every link subscribers click (unsubscribe, confirm, view online): the public https
# address of `newsletter serve`. An example.com/.example address is refused once SMTP_HOST is set.
PUBLIC_URL=https://news.your-clinic.example
# Signs confirmation and unsubscribe links: a long random string, e.g.
#   python -c "import secrets; print(secrets.token_urlsafe(32))"
SECRET_KEY=change-me

# Subscriber database; default is newsletter.db in the site folder.
# DATABASE_URL=postgresql+psycopg://user:password@localhost/newsletter

# SMTP. Without SMTP_HOST, messages go to the outbox/ maildir in the site folder.
SMTP_HOST=
SMTP_PORT=587
SMTP_SECURITY=starttls          # starttls, ssl or none
SMTP_USERNAME=
SMTP_PASSWORD=
# SMTP_CA_FILE=                 # PEM file of a private CA to trust as well (certificates are always verified)
# SMTP_TIMEOUT=30               # seconds to wait for the server at each step
# SMTP_HELO_NAME=               # name given in EHLO (default: this machine's name)
SMTP_CONNECTIONS=4              # connections in parallel, each reused
SEND_RATE=10                    # messages per second, across all connections (empty: no limit)
SEND_MAX_PER_HOUR=              # messages per rolling hour, across runs (empty: no limit)
# SEND_MAX_ATTEMPTS=5           # tries per message within a run for temporary failures
# SEND_RETRY_DELAY=15           # seconds before the first retry; doubles each time

# DKIM signing (all three, or none).
DKIM_PRIVATE_KEY_FILE=
DKIM_SELECTOR=
DKIM_DOMAIN=

# Return path: each message's envelope sender becomes bounces+TOKEN@domain (signed), so every bounce names
# its message. The mailbox must accept bounces+anything@domain (plus-addressing).
# BOUNCE_ADDRESS=bounces@example.com

# Bounce mailbox: where bounces of your messages arrive (IMAP or POP3; TLS is always verified).
# `newsletter bounces fetch` applies them (from cron); `newsletter bounces process FILE...` applies saved ones.
# BOUNCE_IMAP_HOST=imap.example.com
# BOUNCE_IMAP_PORT=993          # 993 for ssl, 143 for starttls
# BOUNCE_IMAP_TLS=ssl           # ssl or starttls
# BOUNCE_IMAP_USER=bounces@example.com
# BOUNCE_IMAP_PASSWORD=
# BOUNCE_IMAP_FOLDER=INBOX
# BOUNCE_IMAP_CA_FILE=          # PEM file of a private CA to trust as well
# BOUNCE_PROCESSED_FOLDER=      # move processed messages here (default: flag them $NewsletterProcessed)
# ...or POP3 instead (processed messages are deleted):
# BOUNCE_POP3_HOST=pop.example.com
# BOUNCE_POP3_PORT=995          # 995 for ssl, 110 for starttls
# BOUNCE_POP3_TLS=ssl
# BOUNCE_POP3_USER=
# BOUNCE_POP3_PASSWORD=
# BOUNCE_POP3_CA_FILE=

# Relay webhooks (PUBLIC_URL/webhooks/ses, /postmark, /mailgun, /sendgrid); a relay without its setting is refused.
# SES_SNS_TOPIC_ARN=            # only accept these SNS topics (comma-separated)
# POSTMARK_WEBHOOK_USER=        # the basic-auth user and password in the webhook URL you give Postmark
# POSTMARK_WEBHOOK_PASSWORD=
# POSTMARK_WEBHOOK_TOKEN=       # or/and a ?token=... in that URL
# MAILGUN_WEBHOOK_SIGNING_KEY=  # Mailgun: Sending > Webhooks > HTTP webhook signing key
# SENDGRID_WEBHOOK_PUBLIC_KEY=  # SendGrid: Mail Settings > Signed Event Webhook > verification key
# WEBHOOK_MAX_AGE=900           # seconds a signed post stays acceptable
# WEBHOOK_REPLAY_FILE=          # an SQLite file remembering received posts (default: memory of one process)
"""

FIRST_ISSUE = """\
subject = "Our news this month"
preheader = "A short line that shows next to the subject in the inbox"
date = 2026-01-01
intro = \"\"\"
Hello {first_name},

Here is what we have been writing about this month.
\"\"\"

[[articles]]
source = "articles/welcome.md"
mode = "full"
"""

WELCOME_ARTICLE = """\
---
title: Welcome to our newsletter
author: The clinic team
date: 2026-01-01
summary: What to expect from us each month.
---

Each month we share news from the clinic and answers to the questions our patients ask most.
"""


# What a person must fill in before real mail can go out (printed by `newsletter init`).
TO_FILL_IN = (
    "PUBLIC_URL in .env: the public https address of `newsletter serve`",
    "[sender] address in newsletter.toml: an address on your clinic's own domain",
    "SMTP_HOST and its login in .env: until then messages go to the outbox/ folder",
)


def env_file(secret_key: str) -> str:
    """The site's first .env: a real SECRET_KEY, and values that `send` refuses until they are filled in."""
    text = ENV_EXAMPLE.replace("# Copy to .env and fill in.", "# Fill in, then keep this file out of version control.")
    return text.replace("SECRET_KEY=change-me", f"SECRET_KEY={secret_key}")


def create_site(root: Path) -> list[Path]:
    """Write the files of a new site; refuse to touch a folder that already has a config.

    ``.env`` gets a freshly drawn SECRET_KEY (readable by its owner only) and
    placeholders that cannot be sent as they are: ``send`` refuses a reserved
    example address once mail goes to a real SMTP server (``link_settings``).
    """
    if (root / "newsletter.toml").exists():
        raise ConfigError("a site already exists here", where=str(root / "newsletter.toml"), hint="choose an empty folder")
    files = {
        root / "newsletter.toml": NEWSLETTER_TOML,
        root / ".env.example": ENV_EXAMPLE,
        root / ".env": env_file(secrets.token_urlsafe(32)),
        root / ".gitignore": ".env\nnewsletter.db\nbuild/\noutbox/\nreports/\n",
        root / "articles" / "welcome.md": WELCOME_ARTICLE,
        root / "issues" / "2026-01.toml": FIRST_ISSUE,
    }
    created = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text, encoding="utf-8")
            if path.name == ".env":
                os.chmod(path, 0o600)  # it holds the secret key
            created.append(path)
    return created
