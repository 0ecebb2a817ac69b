"""Brand colours against WCAG 2.1 AA: can people read what the templates draw in them?

The templates put the site's ``[brand]`` colours in fixed places: body text and
links on the white card, the *Read more* links in the accent colour, white
button text on the accent colour, white header text on the primary colour, and
the footer's dark grey on the page background. A clinic that picks a pale
brand colour makes one of these hard to read (WCAG AA asks 4.5:1 for text), so
the check names the colour, the ratio, where it is used, and a colour of the
same hue that passes.
"""

from __future__ import annotations

import colorsys
import re
from typing import Iterator

from .document import MailDocument
from .model import Finding
from .registry import BUILTIN_RULES

AA_TEXT = 4.5
CARD = "#ffffff"  # the card the articles sit on (templates/email.mjml.j2)
BUTTON_TEXT = "#ffffff"  # templates/styles.mjml.j2, mj-button color
HEADER_TEXT = "#ffffff"  # templates/header.mjml.j2
FOOTER_TEXT = "#3d4246"  # templates/footer.mjml.j2
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

# (brand key, the fixed colour it meets, True when the brand colour is the background, what a reader sees there)
USES: tuple[tuple[str, str, bool, str], ...] = (
    ("text_color", CARD, False, "body text on the white card"),
    ("primary_color", CARD, False, "links and headings on the white card"),
    ("accent_color", CARD, False, '"Read more" links on the white card'),
    ("accent_color", BUTTON_TEXT, True, "white text on the button"),
    ("primary_color", HEADER_TEXT, True, "white text in the header"),
    ("background_color", FOOTER_TEXT, True, "the footer's dark grey text on the page background"),
)


def parse_hex(colour: str) -> tuple[float, float, float] | None:
    """'#c8745a' or '#c75' -> (r, g, b) in 0..1; None for anything else (a named colour, rgb())."""
    match = _HEX.match(colour.strip())
    if not match:
        return None
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return tuple(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2.1 relative luminance."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two hex colours, 1.0 to 21.0."""
    a, b = parse_hex(first), parse_hex(second)
    if a is None or b is None:
        raise ValueError(f"not a hex colour: {first if a is None else second!r}")
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def suggest(colour: str, against: str, target: float = AA_TEXT) -> str | None:
    """The nearest colour of the same hue and saturation that reaches ``target`` against ``against``.

    Lightness moves away from the other colour: darker against a light one,
    lighter against a dark one. None when even black or white would not do.
    """
    rgb, other = parse_hex(colour), parse_hex(against)
    if rgb is None or other is None:
        return None
    hue, lightness, saturation = colorsys.rgb_to_hls(*rgb)
    step = -0.005 if luminance(other) > 0.18 else 0.005
    while 0.0 <= lightness <= 1.0:
        candidate = to_hex(colorsys.hls_to_rgb(hue, lightness, saturation))
        if contrast_ratio(candidate, against) >= target:
            return candidate
        lightness += step
    return None


def check_brand_contrast(doc: MailDocument, settings) -> Iterator[Finding]:
    """One finding per brand colour that some of its uses make hard to read."""
    config = getattr(doc.site, "config", None)
    if config is None:
        return
    failures: dict[str, list[tuple[str, float, str]]] = {}
    for key, fixed, is_background, use in USES:
        colour = getattr(config, key)
        if parse_hex(colour) is None:
            continue  # a named or rgb() colour: mail clients differ too much to judge it here
        ratio = contrast_ratio(colour, fixed)
        if ratio < AA_TEXT:
            failures.setdefault(key, []).append((use, ratio, fixed))
    rule = BUILTIN_RULES["brand-contrast"]
    for key, uses in failures.items():
        colour = getattr(config, key)
        worst_use, worst, fixed = min(uses, key=lambda u: u[1])
        better = _passing_all(colour, [u[2] for u in uses])
        said = "; ".join(f"{use} {ratio:.2f}:1" for use, ratio, _ in uses)
        tip = f"; try {better} ({min(contrast_ratio(better, u[2]) for u in uses):.2f}:1)" if better else ""
        yield Finding(
            rule="brand-contrast",
            severity=rule.severity,
            where=f"newsletter.toml [brand] {key}",
            text=f"{key} {colour}: {said}, WCAG AA needs {AA_TEXT:g}:1{tip}",
            fix=rule.fix,
        )


def _passing_all(colour: str, against: list[str]) -> str | None:
    """A suggestion that passes against every fixed colour the brand colour meets."""
    candidate = colour
    for _ in range(3):
        for other in against:
            if contrast_ratio(candidate, other) < AA_TEXT:
                candidate = suggest(candidate, other) or candidate
        if all(contrast_ratio(candidate, other) >= AA_TEXT for other in against):
            return candidate
    return None
