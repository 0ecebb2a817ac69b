"""Blog pages as the common site builders really produce them: what a marketing user checks
in `newsletter article show --json` (title, author, date, address, lead image, a body with the
article's structure and nothing of the website around it)."""

from __future__ import annotations

import json

import lxml.html
import pytest
from click.testing import CliRunner

from newsletters.articles import ArticleError, HTMLPageReader, read_one
from newsletters.cli import cli
from tests.conftest import FIXTURES

ARTICLES = FIXTURES / "articles"


def _root(body_html: str):
    return lxml.html.fragment_fromstring(body_html, create_parent="div")


def _text(body_html: str) -> str:
    return " ".join(_root(body_html).text_content().split())


def _tags(body_html: str) -> list[str]:
    return [element.tag for element in _root(body_html).iter()][1:]


def _read(name: str, base_url: str = ""):
    return read_one(str(ARTICLES / name), base_url=base_url)


def _assert_absent(text: str, *furniture: str) -> None:
    for words in furniture:
        assert words not in text, words


def test_elementor_page_with_yoast_graph_as_the_json_a_user_reads():
    result = CliRunner().invoke(
        cli, ["article", "show", str(ARTICLES / "wordpress_elementor_post_with_yoast_graph_share_buttons_and_author_box.html"), "--json"]
    )
    assert result.exit_code == 0, result.output
    [article] = json.loads(result.stdout)
    assert article["title"] == "Microneedling or chemical peel: which suits your skin?"  # no " - Harbourside Skin Clinic"
    assert article["author"] == "Dr Fiona McLeod"  # Yoast's graph, not <meta name=author> "Harbourside Admin"
    assert article["published"] == "2025-02-11T09:12:44+00:00"  # published, not modified
    assert article["url"] == "https://www.harbourside-skin.example.com/microneedling-or-chemical-peel/"
    assert article["image"] == "https://www.harbourside-skin.example.com/wp-content/uploads/2025/02/microneedling-pen.jpg"
    # og:description is the start of the description: the whole sentence is the summary.
    assert article["summary"] == "Both treatments renew the skin, but in different ways. Here is how we help you choose."
    assert article["tags"] == ["microneedling", "chemical peels"]
    body = article["body_html"]
    root = _root(body)
    assert [h.text_content() for h in root.iter("h2", "h3")] == [
        "How microneedling works", "Who it suits", "How a chemical peel works", "At a glance",
    ]
    assert len(root.xpath("//ul/li")) == 3
    # The comparison table keeps its header row as a header.
    assert [th.text_content() for th in root.xpath("//table/thead/tr/th")] == ["", "Microneedling", "Chemical peel"]
    assert root.xpath("//table/tbody/tr[3]/td/text()") == ["From", "£180", "£95"]
    assert 'href="https://www.harbourside-skin.example.com/book-a-consultation/"' in body
    _assert_absent(
        _text(body),
        "Manage Cookie Consent", "Prices Blog", "Call 0131", "Share on", "Facebook", "medical director",  # author box
        "Five lip filler myths", "You might also like", "Dermal filler aftercare", "Join our mailing list",
        "Opening hours", "Care Quality Commission", "Skin treatments",
    )


def test_gutenberg_post_keeps_figures_captions_gallery_and_links_the_video():
    article = _read("gutenberg_post_with_lazy_figure_gallery_picture_and_youtube_embed.html",
                    base_url="https://www.meadowbank.example.com/")
    assert article.title == "Our new treatment rooms are open"  # og:title; <title> has "– Meadowbank Aesthetics"
    assert article.author == "Hannah Okafor"
    assert article.published == "2025-04-02T08:00:00+01:00"
    assert article.url == "https://www.meadowbank.example.com/news/new-treatment-rooms/"  # relative canonical
    # The lazy-loaded first figure is the og:image: it leads the article and is not repeated in the body.
    assert article.image == "https://www.meadowbank.example.com/wp-content/uploads/2025/04/reception-1024x683.jpg"
    assert article.image_alt == "Our new reception desk with fresh flowers"
    assert "reception-1024x683" not in article.body_html
    root = _root(article.body_html)
    sources = [img.get("src") for img in root.iter("img")]
    assert sources == [
        "https://www.meadowbank.example.com/wp-content/uploads/2025/04/laser-room-600x400.jpg",
        "https://www.meadowbank.example.com/wp-content/uploads/2025/04/consult-room.jpg",  # the <img> in <picture>
    ]
    assert all(img.get("alt") for img in root.iter("img"))
    text = _text(article.body_html)
    for caption in ("The new reception, with step-free access", "Both rooms have air conditioning.",
                    "Take the video tour with Hannah."):
        assert caption in text, caption
    # h1-h6 in the post come out as h2-h4, in order, none lost.
    assert [(h.tag, h.text_content()) for h in root.iter("h2", "h3", "h4")] == [
        ("h2", "What has changed"), ("h3", "A look inside"), ("h4", "Parking"),
        ("h4", "Small print heading"), ("h4", "Tiny heading"),
    ]
    assert len(root.xpath("//ol/li")) == 3
    # A mail client plays no embedded video: the player becomes a link to the video's page.
    video = root.xpath("//a[contains(@href, 'youtube')]")
    assert [(a.get("href"), a.text_content()) for a in video] == [
        ("https://www.youtube.com/watch?v=Xk3mTour01a", "Tour of Meadowbank Aesthetics")
    ]
    assert "iframe" not in article.body_html
    assert "— Mrs J., Swanley" in text and "😊" in text  # the quote's source on its own line; emoji intact
    assert article.tags == ["News", "clinic news", "accessibility"]
    _assert_absent(text, "Skip to content", "Post navigation", "Christmas opening hours", "Leave a Reply",
                   "Recent Posts", "Posted in", "© 2025")


def test_ghost_post_keeps_callout_text_and_knows_its_feature_image_at_another_size():
    article = _read("ghost_post_with_feature_image_callout_and_signup_card.html")
    assert article.title == "Five questions to ask before your first filler appointment"
    assert article.author == "Chloé Durand"
    assert article.published == "2025-01-20T10:30:00+00:00"
    assert article.tags == ["Dermal fillers", "Safety"]
    assert article.image == "https://journal.willowbrook-clinic.example.org/content/images/2025/01/consultation.jpg"
    # The same picture at /size/w2000/ in the page supplies the alt text, and is not shown twice.
    assert article.image_alt == "A practitioner and a client talking across a desk"
    assert article.warnings == []
    assert "consultation.jpg" not in article.body_html
    text = _text(article.body_html)
    assert "Tip: bring a photo of yourself from five years ago. It helps us aim for you, refreshed." in text
    assert "Every syringe carries a batch label: ask to see it." in text
    assert len(_root(article.body_html).xpath("//h2")) == 5
    _assert_absent(text, "Sign up for", "Subscribe", "Lip filler aftercare", "4 min read", "Powered by Ghost", "💡")


def test_blogger_post_takes_the_timestamp_and_drops_share_links_and_comments():
    article = _read("blogger_post_with_div_paragraphs_and_abbr_timestamp.html")
    assert article.title == "Teeth whitening myths, busted"  # not "Thornfield Dental Blog: …"
    assert article.author == "Priya Raman"
    assert article.published == "2024-11-12T09:30:00+00:00"  # the abbr's title, not just the day
    assert article.tags == ["whitening", "myths"]
    # /s1600/ (og:image) and /s320/ (in the post) are one picture: alt found, shown once.
    assert article.image_alt == "A shade guide held next to a smile"
    assert "whitening.jpg" not in article.body_html
    root = _root(article.body_html)
    assert len(root.findall("p")) == 8 and "<br" not in article.body_html
    text = _text(article.body_html)
    assert text.startswith('Every few months a new whitening "hack"')
    assert 'href="mailto:hello@thornfield-dental.example.com"' in article.body_html
    _assert_absent(text, "Email This", "BlogThis", "Share to X", "Labels:", "2 comments", "charcoal one and regretted",
                   "Newer Post", "About Me", "Blog Archive", "Posted by")


def test_divi_post_restores_the_lazy_image_once_and_drops_the_signup_module():
    article = _read("divi_post_with_lazy_image_noscript_and_signup_module.html")
    assert article.title == "Acne scarring: your treatment options"
    assert article.author == "Lucy Hartley"
    assert article.published == "2025-03-03"
    root = _root(article.body_html)
    # The data-src, once: not the GIF placeholder, not the <noscript> copy. Being the page's only
    # picture it leads the article, so the body (shown under the lead image) does not repeat it.
    assert article.image == "https://primrose-skin.example.com/wp-content/uploads/2025/03/before-after-800x600.jpg"
    assert [img.get("src") for img in root.iter("img")] == []
    assert [h.text_content() for h in root.iter("h2")] == ["Types of scar", "What we offer"]
    assert 'href="https://primrose-skin.example.com/prices/"' in article.body_html
    _assert_absent(_text(article.body_html), "Get skin tips", "Subscribe", "Follow on", "Instagram", "Recent Posts",
                   "Rosacea in spring", "uses cookies", "4 Bridge Street", "Book now")


def test_old_table_layout_page_in_windows_1252_reads_like_any_other_post():
    raw = (ARTICLES / "table_layout_page_in_windows_1252_with_posted_on_byline.html").read_bytes()
    assert b"charset=windows-1252" in raw and "Zoë".encode("cp1252") in raw  # the fixture is what it claims
    article = _read("table_layout_page_in_windows_1252_with_posted_on_byline.html",
                    base_url="https://www.brackenwood.example.com/news/")
    assert article.title == "Café consultations: meet our nurse"
    assert article.author == "Nurse Zoë Whitfield"  # "Posted on 3 March 2025 by …", the only place it is said
    assert article.published == "2025-03-03"
    assert "<table" not in article.body_html and "<td" not in article.body_html  # layout, not data
    root = _root(article.body_html)
    assert [li.text_content() for li in root.iter("li")] == [
        "anti-wrinkle treatments and what they can – and can’t – do",
        "skin boosters and peels",
        "looking after your skin through the menopause",
    ]
    text = _text(article.body_html)
    assert text.startswith("This spring we are trying something new: informal “café consultations”")
    assert "£2" in text
    _assert_absent(text, "Posted on", "Contact us", "Treatments", "Back to news", "© Brackenwood", "Mill Lane")
    assert article.image == ""  # the site banner is not the post's picture


def test_page_without_an_article_element_gives_the_post_not_the_longer_comment_thread_nor_a_made_up_date():
    article = _read("handwritten_page_without_article_tag_longer_comments_and_copyright_year.html")
    assert article.title == "Our charity bike ride"
    text = _text(article.body_html)
    assert text.startswith("On Sunday six of our team cycled 50 miles")
    assert "£2,350" in text
    _assert_absent(text, "Well done everyone", "4 comments", "© Elm Clinic")
    assert article.published == ""  # "© Elm Clinic 2025" is not 1 January 2025


def test_blog_listing_page_is_refused_with_a_post_to_use_instead():
    with pytest.raises(ArticleError) as caught:
        _read("squarespace_blog_listing_page_not_a_single_post.html")
    assert "lists 3 posts" in caught.value.message
    assert caught.value.where.endswith("squarespace_blog_listing_page_not_a_single_post.html")
    assert "https://www.elmstead-physio.example.com/journal/desk-posture" in caught.value.hint
    result = CliRunner().invoke(cli, ["article", "show", str(ARTICLES / "squarespace_blog_listing_page_not_a_single_post.html")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "lists 3 posts" in result.output


def test_posted_by_line_above_the_body_gives_author_and_time_when_the_page_has_no_metadata():
    article = _read("theme_post_with_posted_by_line_above_the_body_and_no_metadata.html")
    assert article.title == "Menopause and your skin"  # "– Juniper Women's Health" gone, from the <h1>
    assert article.author == "Dr Helen Okoro"
    assert article.published == "2025-01-06T12:15"  # "at 12:15 pm", the category after "·" ignored
    text = _text(article.body_html)
    assert text.startswith("Falling oestrogen changes your skin")
    _assert_absent(text, "Posted by", "Menopause ·", "Services")


def test_json_ld_with_html_entities_from_an_seo_plugin_reads_as_text():
    page = (
        '<html><head><title>SPF</title><script type="application/ld+json">{"@type": "BlogPosting",'
        ' "headline": "Don&#8217;t skip SPF &amp; moisturiser", "author": {"@type": "Person", "name": "Zo&euml; Hart"},'
        ' "datePublished": "2025-05-01"}</script></head><body><article><h1>SPF</h1>'
        + "<p>Sunscreen matters every single day of the year, even when it is grey and cloudy outside.</p>" * 3
        + "</article></body></html>"
    )
    [article] = HTMLPageReader().read(page, source="spf.html", base_url="")
    assert article.title == "Don’t skip SPF & moisturiser"
    assert article.author == "Zoë Hart"


RELATED_BOX = "".join(
    f'<div class="card"><h3><a href="/blog/{slug}/">{title}</a></h3><p>{title}: what to expect, how long it takes '
    "and what it costs at our clinic, in plain words.</p></div>"
    for slug, title in (("peels", "Chemical peels"), ("laser", "Laser hair removal"), ("fillers", "Dermal fillers"))
)


def test_post_calling_itself_a_website_with_a_related_posts_box_is_still_a_post():
    page = (
        '<html><head><title>Rosacea in spring</title><meta property="og:type" content="website"></head><body>'
        "<div class='main'><h1>Rosacea in spring</h1>"
        + "<p>Warmer days, pollen and spring sunshine can all set off a rosacea flare, so now is a good time to plan.</p>" * 3
        + f"</div><div class='more'><h2>More from the blog</h2>{RELATED_BOX}</div></body></html>"
    )
    [article] = HTMLPageReader().read(page, source="rosacea.html", base_url="")
    assert article.title == "Rosacea in spring"
    assert "Chemical peels" not in _text(article.body_html)


def test_category_archive_with_its_own_heading_is_a_listing():
    page = (
        '<html><head><title>News archive</title></head><body><h1>Category: News</h1>'
        f"{RELATED_BOX}<p>Page 1 of 4</p></body></html>"
    )
    with pytest.raises(ArticleError) as caught:
        HTMLPageReader().read(page, source="https://www.example.com/category/news/", base_url="")
    assert "lists 3 posts" in caught.value.message
    assert "https://www.example.com/blog/peels/" in caught.value.hint


def test_images_known_only_by_srcset_data_srcset_or_picture_get_a_real_address():
    opening = "<p>Autumn is the best time to start a course of peels, because the sun is lower and weaker now.</p>"
    page = (
        "<html><head><title>Peels</title></head><body><article><h1>Peels</h1>" + opening
        + '<h2>Before</h2><img srcset="/i/peel-400.jpg 400w, /i/peel-1000.jpg 1000w, /i/peel-2000.jpg 2000w" alt="A">'
        + '<p>Your skin is cleansed and a gentle acid solution is brushed on for a few minutes at a time.</p>'
        + '<img data-srcset="/i/b-600.jpg 600w, /i/b-1200.jpg 1200w" src="/img/lazy-placeholder.gif" alt="B">'
        + '<p>Then it is neutralised, and we finish with a soothing balm and a broad-spectrum sunscreen.</p>'
        + '<picture><source srcset="/i/c.webp" type="image/webp"><img data-src="/i/c.jpg" alt="C"></picture>'
        + "<p>Most people go back to work the same afternoon with nothing more than a little pinkness.</p>"
        + "</article></body></html>"
    )
    [article] = HTMLPageReader().read(page, source="peels.html", base_url="https://www.example.com/blog/peels/")
    # The first picture leads the article (and so is not repeated in the body below it).
    assert article.image == "https://www.example.com/i/peel-1000.jpg"  # the widest rendition up to 1200 px
    assert _root(article.body_html).xpath("//img/@src") == [
        "https://www.example.com/i/b-1200.jpg",  # not the placeholder GIF
        "https://www.example.com/i/c.jpg",  # the lazy <img> inside <picture>
    ]
