"""HTML fragments as the plain-text part: readable, wrapped, every link kept."""

from __future__ import annotations

from pathlib import Path

from newsletters.plaintext import first_paragraph, html_to_text

FIXTURE = Path(__file__).parent / "fixtures" / "render" / "article_body_with_lists_quote_links_and_images.html"


def text() -> str:
    return html_to_text(FIXTURE.read_text(encoding="utf-8"))


def test_headings_are_underlined_or_uppercased():
    out = text()
    assert "Before your first peel\n----------------------" in out
    assert "OPENING HOURS" in out


def test_paragraphs_wrap_at_76_columns_without_breaking_words():
    out = text()
    paragraph = out.split("\n\n")[1]
    assert paragraph.startswith("Stop using retinoid creams")
    assert all(len(line) <= 76 for line in paragraph.splitlines())
    assert len(paragraph.splitlines()) > 1
    assert " ".join(paragraph.split()) == (
        "Stop using retinoid creams five days before your appointment, and avoid waxing or threading the area "
        "for a week. If you are unsure about any product, bring it with you and we will look at the label together."
    )


def test_lists_use_dashes_and_numbers_with_hanging_indent():
    lines = text().splitlines()
    assert "- Arrive with a clean face, or come ten minutes early and wash it here." in lines
    assert "- Tell us about any cold sores in the past year." in lines
    assert ["1. Consultation", "2. Patch test", "3. Treatment"] == [line for line in lines if line[:2] in ("1.", "2.", "3.")]


def test_links_show_their_address_and_images_their_alt():
    out = " ".join(text().split())
    assert "aftercare guide (https://www.larkfield-clinic.example.com/aftercare/)" in out
    assert "write to hello@larkfield-clinic.example.com." in out  # mailto shown once, not twice
    assert "01622 000 123 (tel:+441622000123)" in out
    assert "[A nurse applying a light peel]" in out


def test_br_starts_a_new_line_and_quotes_are_marked():
    out = text()
    assert "\nSame-day questions:" in out
    assert "> “I wish I had booked the consultation sooner.”" in out


def test_no_tags_or_script_text_leak_through():
    out = text()
    assert "<" not in out and ">" not in out.replace("> “", "")
    assert "alert" not in out


def test_tables_become_rows_of_cells():
    assert "Day | Hours\nThursday | 9am – 8pm" in text()


def test_first_paragraph_for_excerpts():
    assert first_paragraph(FIXTURE.read_text(encoding="utf-8")).startswith("Stop using retinoid creams")
    assert first_paragraph("") == ""
