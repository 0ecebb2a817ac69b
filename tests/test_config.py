"""Site configuration: required keys named, secrets from the environment over .env."""

from __future__ import annotations

import pytest

from newsletters.config import Site
from newsletters.errors import ConfigError


def test_example_site_loads(site_dir):
    site = Site.load(site_dir)
    assert site.config.name == "Larkfield Skin & Laser Clinic"
    assert site.config.sender_domain == "larkfield-clinic.example.com"
    assert site.database_url.endswith("newsletter.db")


def test_missing_required_key_names_file_and_key(site_dir):
    path = site_dir / "newsletter.toml"
    path.write_text(path.read_text().replace('postal_address = "14 Orchard', 'old_address = "14 Orchard'))
    with pytest.raises(ConfigError) as err:
        Site.load(site_dir)
    assert "site.postal_address" in str(err.value)
    assert "newsletter.toml" in str(err.value)


def test_wrong_type_is_reported(site_dir):
    path = site_dir / "newsletter.toml"
    path.write_text(path.read_text().replace("double_opt_in = true", 'double_opt_in = "yes"'))
    with pytest.raises(ConfigError, match="subscribe.double_opt_in must be a bool"):
        Site.load(site_dir)


def test_environment_overrides_dotenv(site_dir, monkeypatch):
    (site_dir / ".env").write_text("SMTP_HOST=from-dotenv\nSECRET_KEY=dotenv-secret\n")
    monkeypatch.setenv("SMTP_HOST", "from-environment")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    site = Site.load(site_dir)
    assert site.setting("SMTP_HOST") == "from-environment"
    assert site.setting("SECRET_KEY") == "dotenv-secret"


def test_bad_number_setting(site_dir, monkeypatch):
    monkeypatch.setenv("SMTP_CONNECTIONS", "two")
    with pytest.raises(ConfigError, match="SMTP_CONNECTIONS must be a whole number"):
        Site.load(site_dir).int_setting("SMTP_CONNECTIONS", 1)


def test_bounce_policy_defaults_and_its_limits(site_dir):
    path = site_dir / "newsletter.toml"
    config = Site.load(site_dir).config
    assert (config.bounces_soft_limit, config.bounces_soft_issues) == (3, 3)

    path.write_text(path.read_text() + "\n[bounces]\nsoft_limit = 4\nsoft_issues = 3\n")
    with pytest.raises(ConfigError, match=r"bounces.soft_limit \(4\) must be at least 1 and at most bounces.soft_issues"):
        Site.load(site_dir)
    path.write_text(path.read_text().replace("soft_limit = 4", "soft_limit = true"))
    with pytest.raises(ConfigError, match="bounces.soft_limit must be an int, not bool"):
        Site.load(site_dir)
