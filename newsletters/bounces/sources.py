"""The messages in the paths a user names: ``.eml`` files, maildirs (``cur/`` and ``new/``) and mbox files.

Read only: nothing is moved, flagged or locked (Python's ``mailbox.mbox``
opens files for writing, so mbox files are split here, by their ``From ``
lines, and ``>From `` quoting is undone). Each message is capped at the
reader's size limit while reading, so a 2 GB file costs no more memory than
one message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import NewsletterError
from .mime import MAX_MESSAGE_BYTES

_QUOTED_FROM_RE = re.compile(rb"^>(>*From )")


class BounceSourceError(NewsletterError):
    """A path given to ``bounces read`` is not a message, a maildir or an mbox file."""


def messages(paths: list[str | Path]) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for every message under the paths, in the order given (maildirs sorted by name)."""
    for path in map(Path, paths):
        try:
            yield from _messages(path)
        except OSError as exc:
            raise BounceSourceError(
                f"cannot be read: {exc.strerror or exc}", where=str(exc.filename or path),
                hint="check the path and its permissions",
            ) from None


def _messages(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        yield from _maildir(path)
    elif path.is_file():
        with path.open("rb") as handle:
            if handle.read(5) == b"From ":
                handle.seek(0)
                yield from _mbox(path, handle)
            else:
                handle.seek(0)
                yield str(path), handle.read(MAX_MESSAGE_BYTES)
    else:
        raise BounceSourceError("no such file or folder", where=str(path), hint="give .eml files, maildirs or mbox files")


def _maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    folders = [path / name for name in ("new", "cur") if (path / name).is_dir()]
    if not folders:
        raise BounceSourceError(
            "is a folder but not a maildir (no cur/ or new/ inside)",
            where=str(path),
            hint="give the maildir itself (the folder holding cur/ and new/), or the .eml files",
        )
    for folder in folders:
        for item in sorted(folder.iterdir()):
            if item.is_file() and not item.name.startswith("."):
                with item.open("rb") as handle:
                    yield str(item), handle.read(MAX_MESSAGE_BYTES)


def _mbox(path: Path, handle: BinaryIO) -> Iterator[tuple[str, bytes]]:
    number, size, lines = 0, 0, []
    previous_blank = True
    for line in handle:
        if line.startswith(b"From ") and previous_blank:
            if number:
                yield f"{path}#{number}", b"".join(lines)
            number, size, lines = number + 1, 0, []
        else:
            if size < MAX_MESSAGE_BYTES:
                line = _QUOTED_FROM_RE.sub(rb"\1", line)
                lines.append(line)
                size += len(line)
        previous_blank = not line.strip()
    if number:
        yield f"{path}#{number}", b"".join(lines)
