"""Commands of this family register themselves on `cli` (see cli/__init__.py)."""

from . import cli, pass_ctx  # noqa: F401
