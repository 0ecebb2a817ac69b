"""The one shape every reader produces, whatever the input format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The keys `newsletter article show --json` prints, in this order.
ARTICLE_KEYS = ("title", "url", "author", "published", "summary", "image", "body_html", "tags", "source")


class ReaderWarning(str):
    """A reader's warning; ``covered_by`` names the pre-send check rule that reports the same thing.

    ``newsletter article show`` prints every warning (no checks run there);
    ``build`` and the preview leave a covered one to its check finding, so
    one problem is said once, in one set of words.
    """

    covered_by: str

    def __new__(cls, text: str, covered_by: str = "") -> "ReaderWarning":
        warning = super().__new__(cls, text)
        warning.covered_by = covered_by
        return warning


@dataclass
class Article:
    """One blog post, with its body already sanitized for e-mail.

    ``published`` is an ISO 8601 string (``2018-05-18T15:57`` or with seconds /
    offset when the source has them), or ``""`` when the source gives no date.
    ``body_html`` is safe to put into a message: readers pass it through
    ``newsletters.articles.sanitize`` before building the Article. ``image_alt``
    travels with ``image`` for the templates but is not part of the JSON view.
    """

    title: str
    url: str = ""
    author: str = ""
    published: str = ""
    summary: str = ""
    image: str = ""
    body_html: str = ""
    tags: list[str] = field(default_factory=list)
    source: str = ""
    image_alt: str = ""
    warnings: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        data = asdict(self)
        return {key: data[key] for key in ARTICLE_KEYS}
