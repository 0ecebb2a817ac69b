"""An e-mail plays no video: every embedded player, from any host, becomes a link, and the reader is told."""

from __future__ import annotations

import lxml.html

from newsletters.articles import read_one, sanitize_html
from tests.conftest import FIXTURES

OWN = FIXTURES / "issue13"


def _links(body_html: str) -> list[tuple[str, str]]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [(a.getparent().text_content(), a.get("href")) for a in root.iter("a")]


def test_a_wistia_player_and_a_self_hosted_video_become_watch_the_video_links_with_warnings():
    article = read_one(str(OWN / "markdown_post_with_a_wistia_player_and_a_self_hosted_video.md"))
    wistia = "https://fast.wistia.net/embed/iframe/k3x9q2m1pa?videoFoam=true"
    clip = "https://www.oakbridge-skin.example.org/uploads/2026/11/cooling-tip.mp4"
    assert _links(article.body_html) == [
        ("Watch the video: A tour of the laser suite", wistia),
        ("Watch the video: cooling-tip.mp4", clip),
    ]
    assert "<iframe" not in article.body_html and "<video" not in article.body_html
    warnings = [w for w in article.warnings if "Watch the video" in w]
    assert len(warnings) == 2
    assert f"the embedded video or frame {wistia} cannot play in an e-mail" in warnings[0]
    assert clip in warnings[1]


def test_a_loom_embed_on_a_saved_page_survives_the_extractor_as_a_link():
    article = read_one(str(OWN / "page_with_a_loom_embed_in_the_article.html"))
    loom = "https://www.loom.com/embed/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert ("Watch the video: Two finger-lengths of SPF", loom) in _links(article.body_html)
    assert any(loom in w and "Watch the video" in w for w in article.warnings)
    assert "Reapply every two hours outdoors" in article.body_html


def test_a_plugin_object_that_is_no_video_still_goes_without_a_link():
    clean = sanitize_html('<object data="https://example.org/game.swf"></object><p>After</p>', base_url="")
    assert clean == "<p>After</p>"
