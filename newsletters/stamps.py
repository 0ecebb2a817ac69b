"""What a kept result depends on besides its input: the code that made it, named cheaply.

``build`` keeps two results beside the build so that each ``send`` process need
not make them again (``newsletters.build``): the CSS inlining and the articles
as read. Each is reused only while the code that made it is the same, and these
stamps say which code that was without importing it: a package's files by name,
size and modification time (an upgrade rewrites them), and the distributions
installed beside it (their ``*.dist-info`` folders carry the versions). Asking
``importlib.metadata`` instead would cost more than a fresh process saves.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def files_stamp(folder: Path) -> str:
    """The files directly in ``folder``: name, size and modification time of each."""
    try:
        with os.scandir(folder) as entries:
            stats = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file())
    except OSError:
        return f"{folder} unreadable"
    return f"{folder} {stats}"


def package_folder(name: str) -> Path | None:
    """Where a top-level package is installed (found, not imported); None when it is not."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def installed_in(name: str) -> Path | None:
    """The folder a top-level package or module is installed in (``site-packages``, usually)."""
    spec = importlib.util.find_spec(name)
    if not spec or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent.parent if spec.submodule_search_locations is not None else origin.parent


def packages_stamp(names: tuple[str, ...]) -> str:
    """The files of each package (``files_stamp`` of its folder)."""
    parts = []
    for name in names:
        folder = package_folder(name)
        parts.append(f"{name} {files_stamp(folder) if folder else 'missing'}")
    return "\n".join(parts)


def distributions_stamp(names: tuple[str, ...]) -> str:
    """The distributions (name and version) installed where these packages are: all of their
    dependencies too, wherever the packages came from."""
    folders = sorted({str(folder) for name in names if (folder := installed_in(name))})
    parts = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                parts.append(f"{folder} {sorted(e.name for e in entries if e.name.endswith('.dist-info'))}")
        except OSError:
            parts.append(f"{folder} unreadable")
    return "\n".join(parts) or "none installed"
