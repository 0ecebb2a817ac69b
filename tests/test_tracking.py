"""[tracking] utm = true: campaign tags on links to the clinic's own website, and on no other link."""

from __future__ import annotations

import email
import email.policy
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest

from newsletters.build import build_issue
from newsletters.config import Site
from newsletters.errors import ConfigError
from tests.conftest import FIXTURES
from test_checks_support import build_and_check, found

ARTICLE = "markdown_post_linking_to_our_site_a_partner_and_a_tagged_page.md"
ISSUE = f"""\
subject = "Christmas at Larkfield"
preheader = "Vouchers, opening hours and a winter price list"
date = 2026-12-01
slug = "2026-12"

[[articles]]
source = "articles/{ARTICLE}"
mode = "full"

[cta]
text = "Buy a voucher"
url = "https://www.larkfield-clinic.example.com/vouchers/"
"""


@pytest.fixture
def issue(site_dir):
    (site_dir / "articles" / ARTICLE).write_bytes((FIXTURES / "issue13" / ARTICLE).read_bytes())
    path = site_dir / "issues" / "2026-12.toml"
    path.write_text(ISSUE, encoding="utf-8")
    return path


def _tracking(site_dir, text: str) -> None:
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[tracking]\n" + text, encoding="utf-8")


def _sample_parts(result) -> tuple[str, str]:
    message = email.message_from_bytes(result.paths["sample.eml"].read_bytes(), policy=email.policy.default)
    return message.get_body(("html",)).get_content(), message.get_body(("plain",)).get_content()


def _hrefs(html: str) -> list[str]:
    return [a.get("href") for a in lxml.html.document_fromstring(html).iter("a")]


def test_off_by_default_no_link_is_tagged(site_dir, issue):
    result = build_issue(Site.load(site_dir), issue)
    html, text = _sample_parts(result)
    assert "utm_source" not in html and "utm_source" not in text
    assert "utm_medium" not in html and "utm_medium" not in text


def test_on_links_to_our_own_website_are_tagged_and_no_other(site_dir, issue):
    _tracking(site_dir, "utm = true\n")
    result = build_issue(Site.load(site_dir), issue)
    html, text = _sample_parts(result)
    own, other = [], []
    for href in _hrefs(html):
        host = urlsplit(href).hostname or ""
        (own if host.endswith("larkfield-clinic.example.com") else other).append(href)
    assert own and other
    for href in own:
        query = parse_qs(urlsplit(href).query)
        assert query["utm_source"] == ["newsletter"] and query["utm_medium"] == ["email"], href
        assert query["utm_campaign"] in (["2026-12"], ["winter-prices"]), href  # the page's own tag wins
    assert "https://www.larkfield-clinic.example.com/vouchers/?amount=50&utm_source=newsletter&utm_medium=email&utm_campaign=2026-12" in own
    assert any(href.startswith("https://larkfield-clinic.example.com/visit/?utm_source=") for href in own)  # no www.
    for href in other:  # the partner, the unsubscribe and view-online links, mailto: and tel:
        assert "utm_" not in href, href
    assert "https://www.giftly-cards.example.net/larkfield/" in other
    assert any(href.endswith("/unsubscribe/sample-token") for href in other)
    # The plain-text part says the same links.
    assert "https://www.larkfield-clinic.example.com/blog/gift-vouchers/?utm_source=newsletter&utm_medium=email&utm_campaign=2026-12" in text
    assert "https://www.giftly-cards.example.net/larkfield/)" in text
    assert "<img" not in html  # this issue has no picture, and tracking adds none: no open-tracking pixel


def test_each_tag_can_be_overridden(site_dir, issue):
    _tracking(site_dir, 'utm = true\nutm_source = "larkfield-news"\nutm_medium = "e-mail"\nutm_campaign = "christmas-2026"\n')
    html, _ = _sample_parts(build_issue(Site.load(site_dir), issue))
    cta = next(h for h in _hrefs(html) if "/vouchers/?" in h and "amount" not in h)
    assert parse_qs(urlsplit(cta).query) == {
        "utm_source": ["larkfield-news"], "utm_medium": ["e-mail"], "utm_campaign": ["christmas-2026"]
    }


def test_the_checks_still_trace_tagged_links_to_the_article_they_came_from(site_dir, issue):
    text = issue.read_text(encoding="utf-8")
    article = site_dir / "articles" / ARTICLE
    article.write_text(article.read_text(encoding="utf-8").replace("[at reception]", "[click here]"), encoding="utf-8")
    _tracking(site_dir, "utm = true\n")
    _, report = build_and_check(site_dir, issue)
    assert found(report, "link-click-here") == [("link-click-here", "warning", f"article articles/{ARTICLE}", "click here")]
    assert text  # the issue file itself is untouched


def test_an_empty_tag_value_is_a_config_error(site_dir):
    _tracking(site_dir, 'utm = true\nutm_medium = ""\n')
    with pytest.raises(ConfigError) as caught:
        Site.load(site_dir)
    assert "tracking.utm_medium is empty" in caught.value.message
