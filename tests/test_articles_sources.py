"""Sources as a user gives them: files of every kind, and URLs served by a real local web server."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from newsletters.articles import ArticleError, read_one, read_source
from newsletters.articles import sources as sources_module
from tests.conftest import FIXTURES, POM_EXPORT

ARTICLES = FIXTURES / "articles"
FEEDS = FIXTURES / "feeds"


# --- URLs ---------------------------------------------------------------------------------------


def test_blog_post_url_without_extension_is_read_as_a_page(local_site):
    page = (ARTICLES / "handwritten_page_with_relative_links_and_image_without_alt.html").read_bytes()
    url = local_site.add("/news/new-treatment-room", page, "text/html; charset=utf-8")
    article = read_one(url)
    assert article.title == "Our new treatment room"
    assert article.source == url
    assert article.url == ""  # the page names no canonical address
    # Relative links resolve against the address the page came from.
    assert f'href="{local_site.url}/news/contact.html"' in article.body_html
    assert local_site.requests[0]["user_agent"].startswith("newsletters/")


def test_feed_url_sniffed_even_when_served_as_text_html(local_site):
    url = local_site.add("/feed/", (FEEDS / "rss_with_content_encoded_and_media.xml").read_bytes(), "text/html")
    articles = read_source(url)
    assert len(articles) == 3
    assert articles[0].source == f"{url}#https://www.example.com/blog/meet-tom-our-new-aesthetic-nurse/"
    one = read_one(articles[2].source)
    assert one.title == "Our opening hours over Christmas"


def test_markdown_and_plain_text_urls_by_content_type(local_site):
    md = local_site.add("/posts/winter", (ARTICLES / "markdown_with_front_matter_table_and_non_ascii.md").read_bytes(),
                        "text/markdown; charset=utf-8")
    txt = local_site.add("/export", POM_EXPORT.read_bytes(), "text/plain; charset=utf-8")
    assert read_one(md).author == "Zoë Brontë"
    assert read_one(txt).author == "Dr Amelia Hart"


def test_server_charset_is_honoured(local_site):
    text = "Laser aftercare — Clinic\n\nCafé visits are fine — just wear SPF on the area.\n"
    url = local_site.add("/latin1.txt", text.replace("—", "-").encode("latin-1"), "text/plain; charset=iso-8859-1")
    assert "Café visits" in read_one(url).body_html


def test_redirect_is_followed(local_site):
    target = local_site.add("/new-home.md", b"---\ntitle: Moved post\n---\nThe post moved here.\n", "text/markdown")
    url = local_site.add("/old-home", target.encode(), "text/html", status=301)
    assert read_one(url).title == "Moved post"


def test_http_404_names_the_url(local_site):
    url = local_site.url + "/blog/missing-post/"
    with pytest.raises(ArticleError) as caught:
        read_one(url)
    assert caught.value.where == url
    assert caught.value.message == "HTTP 404 Not Found"


def test_http_500_names_the_url(local_site):
    url = local_site.add("/broken", b"oops", "text/plain", status=500)
    with pytest.raises(ArticleError, match="HTTP 500") as caught:
        read_one(url)
    assert caught.value.where == url


def test_connection_refused_is_an_article_error():
    # Bind and close a port so nothing listens on it.
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()
    url = f"http://127.0.0.1:{port}/post"
    with pytest.raises(ArticleError, match="cannot fetch") as caught:
        read_one(url)
    assert caught.value.where == url


def test_slow_server_times_out(local_site, monkeypatch):
    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(5)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(sources_module, "TIMEOUT_SECONDS", 0.3)  # the real limit is 20 s
    try:
        with pytest.raises(ArticleError, match="no answer within"):
            read_one(f"http://127.0.0.1:{server.server_port}/slow")
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_url_serving_an_image_is_an_unknown_format(local_site):
    url = local_site.add("/photo", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif")
    with pytest.raises(ArticleError, match="binary file"):
        read_one(url)


# --- files --------------------------------------------------------------------------------------


def test_missing_file_names_it_and_where_it_looked(tmp_path):
    with pytest.raises(ArticleError) as caught:
        read_one("articles/nope.md", root=tmp_path)
    assert caught.value.where == "articles/nope.md"
    assert caught.value.message == "no such file"
    assert str(tmp_path / "articles" / "nope.md") in caught.value.hint


def test_binary_file_is_refused():
    source = str(ARTICLES / "photo_renamed_to_txt_binary.txt")
    with pytest.raises(ArticleError) as caught:
        read_one(source)
    assert caught.value.where == source and "binary" in caught.value.message


def test_file_that_is_not_utf8_is_refused_with_advice():
    source = str(ARTICLES / "plain_text_export_saved_as_windows_1252.txt")
    with pytest.raises(ArticleError) as caught:
        read_one(source)
    assert caught.value.message == "not UTF-8 text"
    assert "UTF-8" in caught.value.hint


def test_html_declaring_its_own_charset_is_decoded_with_it(tmp_path):
    page = (
        '<html><head><meta charset="windows-1252"><title>Caf\xe9 talk</title></head><body><article>'
        + "<p>Our caf\xe9 corner is open again \u2013 come and try the new herbal teas while you wait.</p>" * 4
        + "</article></body></html>"
    )
    path = tmp_path / "cafe.html"
    path.write_bytes(page.encode("windows-1252"))
    article = read_one(str(path))
    assert article.title == "Café talk"
    assert "café corner is open again – come" in article.body_html


def test_empty_file_and_garbage_with_a_feed_extension(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ArticleError, match="empty"):
        read_one(str(empty))
    garbage = tmp_path / "feed.xml"
    garbage.write_text("this is {not] <xml at all", encoding="utf-8")
    with pytest.raises(ArticleError, match="not a valid RSS or Atom feed") as caught:
        read_one(str(garbage))
    assert caught.value.where == str(garbage)


def test_unknown_extension_is_sniffed_or_refused(tmp_path):
    feed = tmp_path / "feed"  # no extension: content decides
    feed.write_bytes((FEEDS / "rss_with_description_only.xml").read_bytes())
    assert read_one(str(feed)).title == "Winter skin: five small habits that help"
    markdown = tmp_path / "post.mdx"
    markdown.write_text("---\ntitle: Front matter decides\n---\nBody.\n", encoding="utf-8")
    assert read_one(str(markdown)).title == "Front matter decides"
    mystery = tmp_path / "notes.docx"
    mystery.write_text("Just some words.", encoding="utf-8")
    with pytest.raises(ArticleError) as caught:
        read_one(str(mystery))
    assert "cannot tell what kind of article" in caught.value.message and ".md" in caught.value.hint


def test_a_folder_is_not_an_article(tmp_path):
    with pytest.raises(ArticleError, match="folder"):
        read_source(str(tmp_path))


def test_relative_paths_are_relative_to_root(tmp_path):
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "a.md").write_text("---\ntitle: Rooted\n---\nText.\n", encoding="utf-8")
    article = read_one("articles/a.md", root=tmp_path)
    assert article.title == "Rooted" and article.source == "articles/a.md"


def test_file_name_with_a_hash_is_not_a_selector(tmp_path):
    path = tmp_path / "post#2.md"
    path.write_text("---\ntitle: Hash in the name\n---\nText.\n", encoding="utf-8")
    assert read_one(str(path)).title == "Hash in the name"


def test_path_objects_round_trip(tmp_path):
    # Sources are strings in issue files; an absolute path string works as well as a relative one.
    path = Path(FEEDS / "rss_with_description_only.xml").resolve()
    assert read_one(str(path)).url == "https://www.willowandfern.example.org/journal/winter-skin"
