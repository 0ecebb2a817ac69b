"""Untrusted article HTML becomes safe, self-contained e-mail HTML."""

from __future__ import annotations

import lxml.html
import pytest

from newsletters.articles import read_one, sanitize_html
from tests.conftest import FIXTURES

BASE = "https://www.example.com/blog/post/"


def _elements(html: str):
    return list(lxml.html.fragment_fromstring(html, create_parent="div").iter())[1:]


@pytest.mark.parametrize(
    ("dangerous", "kept_text", "gone"),
    [
        ("<p>Hi<script>alert(document.cookie)</script></p>", "Hi", "alert"),
        ('<p onclick="steal()" onmouseover="x()">Hello</p>', "Hello", "steal"),
        ('<a href="javascript:alert(1)">Click</a>', "Click", "javascript"),
        ('<a href="JaVaScRiPt:alert(1)">Click</a>', "Click", "alert"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">Open</a>', "Open", "data:"),
        ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="x"><p>After</p>', "After", "data:"),
        ('<iframe src="https://video.example.net/embed/1">No frames</iframe><p>Text</p>', "Text", "iframe"),
        ("<style>p{color:red}</style><p>Styled</p>", "Styled", "color"),
        ('<p style="position:fixed;top:0">Pinned</p>', "Pinned", "position"),
        ('<form action="/x"><input name="e"><button>Go</button></form><p>Form gone</p>', "Form gone", "Go<"),
        ('<svg onload="alert(1)"><circle/></svg><p>Vector</p>', "Vector", "svg"),
        ('<object data="x.swf"></object><embed src="y.swf"><p>Plugins</p>', "Plugins", "swf"),
        ('<p class="wp-block" id="p1" data-track="1">Attrs</p>', "Attrs", "wp-block"),
    ],
)
def test_dangerous_markup_is_removed(dangerous, kept_text, gone):
    clean = sanitize_html(dangerous, base_url=BASE)
    assert kept_text in clean
    assert gone.lower() not in clean.lower()
    for element in _elements(clean):
        assert not any(name.startswith("on") or name in ("style", "class", "id") for name in element.attrib)


def test_allowed_structure_survives_and_headings_fit_the_template():
    html = (
        "<h1>Big</h1><h2>Two</h2><h3>Three</h3><h4>Four</h4><h5>Five</h5><h6>Six</h6>"
        "<ul><li>a</li></ul><ol start='3'><li>b</li></ol><blockquote>q</blockquote>"
        "<figure><img src='/i.jpg' alt='An image' width='600' height='400'><figcaption>Cap</figcaption></figure>"
        "<table><thead><tr><th colspan='2'>H</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
        "<p><strong>s</strong> <em>e</em> <b>b</b> <i>i</i><br>line</p>"
    )
    tags = [el.tag for el in _elements(sanitize_html(html, base_url=BASE))]
    assert "h1" not in tags and "h5" not in tags and "h6" not in tags
    assert tags.count("h2") == 2 and tags.count("h4") == 3
    for tag in ("ul", "ol", "li", "blockquote", "figure", "img", "figcaption", "table", "thead", "tbody", "tr",
                "th", "td", "strong", "em", "b", "i", "br"):
        assert tag in tags, tag
    clean = sanitize_html(html, base_url=BASE)
    assert 'width="600"' in clean and 'height="400"' in clean and 'colspan="2"' in clean and 'start="3"' in clean


def test_relative_urls_become_absolute_and_links_get_noopener():
    clean = sanitize_html(
        '<a href="/prices/">Prices</a> <a href="../other/">Other</a> <a href="?page=2">Next</a> '
        '<img src="img/a.jpg" alt="A"> <img src="//cdn.example.com/b.jpg" alt="B"> '
        '<a href="mailto:hello@example.com">Mail</a> <a href="tel:+441622000123">Ring</a>',
        base_url=BASE,
    )
    links = {a.text: a for a in _elements(clean) if a.tag == "a"}
    assert links["Prices"].get("href") == "https://www.example.com/prices/"
    assert links["Other"].get("href") == "https://www.example.com/blog/other/"
    assert links["Next"].get("href") == "https://www.example.com/blog/post/?page=2"
    assert links["Mail"].get("href") == "mailto:hello@example.com"
    assert links["Ring"].get("href") == "tel:+441622000123"
    assert all(a.get("rel") == "noopener" for a in links.values())
    srcs = [img.get("src") for img in _elements(clean) if img.tag == "img"]
    assert srcs == ["https://www.example.com/blog/post/img/a.jpg", "https://cdn.example.com/b.jpg"]


def test_in_page_anchors_and_empty_spacers_are_dropped():
    clean = sanitize_html('<p><a href="#top">Jump to the top</a></p><p>&nbsp;</p><p> </p><p><br></p><p>Real</p>', base_url=BASE)
    assert clean == "<p>Jump to the top</p><p>Real</p>"


def test_lazy_loaded_images_get_their_real_source():
    clean = sanitize_html(
        '<img src="data:image/gif;base64,R0lGOD" data-lazy-src="/uploads/real.jpg" alt="Real">'
        '<img srcset="/uploads/small.jpg 300w, /uploads/big.jpg 1024w, /uploads/huge.jpg 2400w" alt="Set">',
        base_url=BASE,
    )
    # From a srcset, the widest rendition up to 1200 px: sharp in a 600 px column on a phone's
    # high-density screen, without sending a 2400 px original.
    assert [img.get("src") for img in _elements(clean)] == [
        "https://www.example.com/uploads/real.jpg",
        "https://www.example.com/uploads/big.jpg",
    ]


def test_non_ascii_text_is_intact():
    text = "<p>Prices from £45 – café, naïve, “quoted”, ‘single’, emoji 😊 and Zoë</p>"
    assert sanitize_html(text, base_url=BASE) == text


def test_a_reader_passes_its_body_through_the_sanitizer():
    article = read_one(str(FIXTURES / "articles" / "markdown_with_raw_script_iframe_and_onclick.md"))
    body = article.body_html.lower()
    for gone in ("<script", "document.cookie", "<iframe", "<style", "display: none", "<form", "<input", "join<",
                 "onclick", "onerror", "javascript:", "data:text"):
        assert gone not in body, gone
    assert "our spring open evening was a lovely night." in body
    assert 'href="https://www.example.com/events/"' in article.body_html
    assert article.image == "https://www.example.com/images/open-evening.jpg"
