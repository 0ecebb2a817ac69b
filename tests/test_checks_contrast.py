"""Colours people can read: the defaults meet WCAG AA, and a brand colour that does not is a finding."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletters.build import build_issue
from newsletters.checks.contrast import contrast_ratio, suggest
from newsletters.config import SCHEMA, Site
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.system_parts import needs_chromium
from test_checks_support import build_and_check, clean_issue, found



def _set_brand(site_dir: Path, **colours: str) -> None:
    """Replace the example site's [brand] table (no keys: the built-in defaults)."""
    config = site_dir / "newsletter.toml"
    text = re.sub(r"\[brand\]\n(?:[a-z_]+ = \"[^\"]*\"\n)+", "", config.read_text(encoding="utf-8"))
    if colours:
        text += "\n[brand]\n" + "".join(f'{key} = "{value}"\n' for key, value in colours.items())
    config.write_text(text, encoding="utf-8")


def test_the_wcag_ratio_is_the_published_formula():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss
    assert contrast_ratio("#c8745a", "#ffffff") == pytest.approx(3.44, abs=0.01)  # the old default accent


def test_the_default_brand_colours_meet_aa_wherever_the_templates_use_them(site_dir):
    _set_brand(site_dir)
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    assert found(report, "brand-contrast") == []
    defaults = {key: value[2] for (section, key), value in SCHEMA.items() if section == "brand"}
    assert contrast_ratio(defaults["accent_color"], "#ffffff") >= 4.5  # "Read more" and the button


def test_a_pale_accent_and_a_pale_text_colour_are_named_with_their_ratio_and_a_colour_that_passes(site_dir):
    _set_brand(site_dir, accent_color="#e8a27a", text_color="#8a8f93")
    _, report = build_and_check(site_dir, clean_issue(site_dir))
    findings = {f.where: f for f in report.findings if f.rule == "brand-contrast"}
    assert set(findings) == {"newsletter.toml [brand] accent_color", "newsletter.toml [brand] text_color"}
    accent = findings["newsletter.toml [brand] accent_color"]
    assert accent.severity == "warning"
    ratio = contrast_ratio("#e8a27a", "#ffffff")
    assert f'"Read more" links on the white card {ratio:.2f}:1' in accent.text
    assert f"white text on the button {ratio:.2f}:1" in accent.text
    suggested = re.search(r"try (#[0-9a-f]{6})", accent.text).group(1)
    assert contrast_ratio(suggested, "#ffffff") >= 4.5
    assert "WCAG AA needs 4.5:1" in findings["newsletter.toml [brand] text_color"].text


def test_a_suggestion_goes_lighter_against_a_dark_colour():
    lighter = suggest("#5a6166", "#15191b")
    assert contrast_ratio(lighter, "#15191b") >= 4.5 and int(lighter[1:3], 16) > 0x5a


@needs_chromium
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_with_images_blocked_alt_text_links_and_button_meet_aa_in_light_and_dark_mode(site_dir, scheme):
    """What a reader sees in a real browser, images blocked as most mail clients do at first."""
    from playwright.sync_api import sync_playwright

    _set_brand(site_dir)
    result = build_issue(Site.load(site_dir), site_dir / "issues" / "2026-11.toml")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(color_scheme=scheme, viewport={"width": 700, "height": 900})
            page.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())  # nothing leaves this machine
            page.goto(result.paths["email.html"].as_uri())
            pairs = page.evaluate(COLOURS_JS)
        finally:
            browser.close()
    kinds = {kind for kind, *_ in pairs}
    assert {"img", "a.nl-more", "button"} <= kinds
    for kind, label, foreground, background in pairs:
        ratio = contrast_ratio(_hex(foreground), _hex(background))
        assert ratio >= 4.5, f"{scheme}: {kind} {label!r} is {foreground} on {background}: {ratio:.2f}:1"


def _hex(css: str) -> str:
    r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


# (kind, label, text colour, the first opaque background behind it) for every image's alt text,
# every "Read more" link and the call-to-action button.
COLOURS_JS = """() => {
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const bg = getComputedStyle(node).backgroundColor;
      if (bg && bg !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(bg)) return bg;
    }
    return 'rgb(255, 255, 255)';
  };
  const out = [];
  for (const img of document.querySelectorAll('img')) {
    if (img.getBoundingClientRect().height === 0) continue;
    out.push(['img', img.alt, getComputedStyle(img).color, background(img)]);
  }
  for (const a of document.querySelectorAll('a.nl-more')) out.push(['a.nl-more', a.textContent, getComputedStyle(a).color, background(a)]);
  for (const a of document.querySelectorAll('td[bgcolor] a, td[bgcolor] p')) {
    if (a.closest('.nl-card')) out.push(['button', a.textContent.trim(), getComputedStyle(a).color, background(a)]);
  }
  return out;
}"""
