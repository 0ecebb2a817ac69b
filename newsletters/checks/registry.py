"""Every rule ``newsletter check`` knows, by id, and the switches a site has over them.

Built-in rules (size, images, links, required content, spam score) are declared
here in code because code does the checking. Phrase rules (the UK advertising
rules) are data: they come from ``*_rules.toml`` files in this package and from
a site's own ``checks.toml``, so marketing and compliance can add a brand name
without a programmer. ``RULES`` is the registry of everything that ships.
"""

from __future__ import annotations

from .model import Rule
from .phrase_rules import BUNDLED_RULESETS

_BUILTIN = [
    # -- settings: links that would be dead for real recipients (newsletters.link_settings).
    Rule(
        "settings-dead-links",
        "error",
        "Mail goes to an SMTP server off this machine, but PUBLIC_URL or the sender address is a reserved "
        "example/test name or a private address: unsubscribe and confirm links would not work.",
        "Set PUBLIC_URL in .env to the public https address of `newsletter serve`, and [sender] address to "
        "your clinic's own domain.",
        "settings",
    ),
    # -- size: Gmail clips an HTML part over 102 KB and hides the rest, unsubscribe link included.
    Rule(
        "html-size-warning",
        "warning",
        "The HTML part, as encoded in the message, is over 90 KB: close to Gmail's 102 KB clipping limit.",
        "Send fewer articles in full (use mode = \"excerpt\"), or shorten them.",
        "size",
    ),
    Rule(
        "html-size-clipped",
        "error",
        "The HTML part, as encoded in the message, is over 102 KB: Gmail clips it and hides the footer "
        "with the unsubscribe link.",
        "Cut the issue down: put long articles in as excerpts (mode = \"excerpt\") or move one to next month.",
        "size",
    ),
    Rule(
        "image-too-heavy",
        "warning",
        "A local image file is heavier than the limit (200 KB unless [checks] image_max_kb says otherwise): "
        "slow on mobile data and a spam signal.",
        "Resize the image to at most twice its displayed width and save it as a compressed JPEG or WebP.",
        "size",
    ),
    # -- images
    Rule(
        "image-missing-alt",
        "warning",
        "A content image has no alt text, or an empty one: most mail clients block images until the reader "
        "allows them, and show the alt text instead.",
        "Give the image alt text that says what it shows (for an article's image, set it in the article).",
        "images",
    ),
    Rule(
        "image-missing-width",
        "warning",
        "An image has no width attribute: Outlook on Windows then shows it at its full pixel size.",
        "Give the <img> a width attribute (a number of pixels, e.g. width=\"600\").",
        "images",
    ),
    Rule(
        "image-insecure-src",
        "warning",
        "An image is loaded over plain http: mail clients warn about it or refuse to load it.",
        "Serve the image over https and use the https:// address.",
        "images",
    ),
    Rule(
        "image-broken-src",
        "error",
        "An image source cannot load in a mail client: a relative path, a file: or data: URL, or no source.",
        "Use an absolute https:// address of the image on the website.",
        "images",
    ),
    # -- links
    Rule(
        "link-relative",
        "error",
        "A link has no scheme and host (relative, or protocol-relative //): it goes nowhere in a mail client.",
        "Write the full address starting with https://.",
        "links",
    ),
    Rule(
        "link-anchor",
        "warning",
        "A link jumps to an anchor in the same message (#top): most mail clients ignore it or open a blank page.",
        "Remove the link, or link to the page on the website instead.",
        "links",
    ),
    Rule(
        "link-unsafe-scheme",
        "error",
        "A link uses a scheme mail clients block or spam filters flag (javascript:, data:, file:, ...).",
        "Link only to https://, mailto: or tel: addresses.",
        "links",
    ),
    Rule(
        "link-empty-text",
        "warning",
        "A link has no text and no image alt text: screen readers announce only the address, and it looks "
        "like a hidden link to spam filters.",
        "Give the link text that says where it goes, or alt text to the image inside it.",
        "links",
    ),
    Rule(
        "link-click-here",
        "warning",
        "A link says \"click here\" (or just \"here\"): it tells nobody where it goes, and spam filters "
        "score the phrase.",
        "Make the link text say where it leads, e.g. \"Book a consultation\".",
        "links",
    ),
    Rule(
        "link-same-url-different-text",
        "warning",
        "Links you wrote (in articles, the intro or the call to action) go to the same address under "
        "different texts: readers and screen readers take them for different destinations. The template's own "
        "pairs (an article's title and its \"Read more\") are left alone.",
        "Use the same text for every link to that address, or drop the extra links.",
        "links",
    ),
    # -- colours: WCAG 2.1 AA asks 4.5:1 for text
    Rule(
        "brand-contrast",
        "warning",
        "A brand colour from newsletter.toml makes text hard to read where the templates use it (body text, "
        "links, the button, the header or the footer): its contrast is under WCAG AA's 4.5:1.",
        "Use the suggested colour of the same hue, or another that reaches 4.5:1, in [brand] of newsletter.toml.",
        "colours",
    ),
    # -- required content (CAN-SPAM, PECR reg. 23, and inbox display)
    Rule(
        "unsubscribe-missing",
        "error",
        "There is no visible unsubscribe link (hidden by display:none or a tiny font counts as missing), or "
        "the plain-text part has no unsubscribe address.",
        "Keep the template's footer link to __NL_UNSUBSCRIBE_URL__ visible, with readable link text.",
        "content",
    ),
    Rule(
        "list-unsubscribe-header-missing",
        "warning",
        "The sample message lacks the List-Unsubscribe and List-Unsubscribe-Post headers that Gmail and Yahoo "
        "require of bulk senders for one-click unsubscribe (RFC 8058).",
        "Send through `newsletter send`, which adds both headers; set PUBLIC_URL so the unsubscribe link works.",
        "content",
    ),
    Rule(
        "postal-address-missing",
        "error",
        "The sender's postal address is not in the HTML or the plain-text part (CAN-SPAM; PECR reg. 23 "
        "wants the sender identifiable).",
        "Keep the footer that shows site.postal_address from newsletter.toml.",
        "content",
    ),
    Rule(
        "sender-name-missing",
        "error",
        "Neither the sender's name nor the clinic's name appears in the HTML or the plain-text part.",
        "Keep the template's header or footer that shows the clinic's name.",
        "content",
    ),
    Rule(
        "preheader-missing",
        "warning",
        "There is no preheader: the inbox then shows the first words of the message (often \"View online\").",
        "Add preheader = \"...\" to the issue file: one sentence that adds to the subject.",
        "content",
    ),
    Rule(
        "subject-too-long",
        "warning",
        "The subject is over 78 characters: inboxes cut it off, on phones well before that.",
        "Shorten the subject; put the rest in the preheader.",
        "content",
    ),
    Rule(
        "text-part-incomplete",
        "error",
        "The plain-text part lacks an article's title or link, or an unsubscribe address: readers of the "
        "text version miss it.",
        "Keep every article in the text template (templates/email.txt.j2) with its title and link.",
        "content",
    ),
    # -- spam score
    Rule(
        "spam-score-warning",
        "warning",
        "SpamAssassin scores the sample message 2 or more: some filters will file it as junk.",
        "Read the SpamAssassin rules listed with the finding and change what they point at.",
        "spam",
    ),
    Rule(
        "spam-score-error",
        "error",
        "SpamAssassin scores the sample message 5 or more: its default threshold, so it is spam to most servers.",
        "Read the SpamAssassin rules listed with the finding and change what they point at.",
        "spam",
    ),
    Rule(
        "spamassassin-missing",
        "info",
        "SpamAssassin is not installed, so the spam score was not checked.",
        "Install it: `sudo apt-get install spamassassin` (Debian/Ubuntu) or `brew install spamassassin`.",
        "spam",
    ),
    Rule(
        "spamassassin-failed",
        "warning",
        "SpamAssassin is installed but did not give a score for the sample message.",
        "Run `spamassassin -L -t < build/<slug>/sample.eml` to see why; reinstall it if it is broken.",
        "spam",
    ),
]

BUILTIN_RULES: dict[str, Rule] = {rule.id: rule for rule in _BUILTIN}

# The registry of every rule that ships: built-in rules, then the bundled phrase rule sets.
RULES: dict[str, Rule] = dict(BUILTIN_RULES)
for _ruleset in BUNDLED_RULESETS:
    for _rule in _ruleset.rules:
        RULES[_rule.id] = _rule
