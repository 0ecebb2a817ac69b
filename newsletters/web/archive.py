"""The archive: the list of built issues and each issue's web version, read from the build folder."""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template, send_from_directory

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def archive_blueprint(site) -> Blueprint:
    bp = Blueprint("archive", __name__)

    @bp.get("/")
    def index():
        build = site.build_dir
        issues = sorted(
            (p.name for p in build.iterdir() if SLUG.match(p.name) and (p / "web.html").is_file()),
            reverse=True,
        ) if build.is_dir() else []
        return render_template("index.html", issues=issues)

    @bp.get("/issues/<slug>/")
    def issue(slug: str):
        if not SLUG.match(slug) or ".." in slug:
            abort(404)
        folder = site.build_dir / slug
        if not (folder / "web.html").is_file():
            abort(404)
        return send_from_directory(folder, "web.html", mimetype="text/html", max_age=300)

    return bp
