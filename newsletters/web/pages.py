"""What every public and staff page answers with: a short message page, and the page for a link that does not work."""

from __future__ import annotations

from flask import render_template

from ..errors import TokenError


def message_page(title: str, paragraphs: list[str], status: int = 200, links: list[tuple[str, str]] | None = None):
    """The site's plain message page (``message.html``) and its status code, as a Flask view returns them."""
    return render_template("message.html", title=title, paragraphs=paragraphs, links=links or []), status


def bad_link_page(site, exc: TokenError, purpose: str):
    """A forged, tampered or expired link: a 400 that says nothing changed, and what to do instead."""
    paragraphs = [exc.message[:1].upper() + exc.message[1:] + ".", "Nothing has been changed."]
    if purpose == "unsubscribe":
        contact = site.config.sender_reply_to or site.config.sender_address
        paragraphs.append(f"To stop the newsletter, reply to any issue or write to {contact} and we will "
                          "unsubscribe you.")
        links = []
    else:
        links = [("Subscribe again", "/subscribe")]
    return message_page("This link does not work", paragraphs, 400, links)
