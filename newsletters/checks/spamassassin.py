"""Score the sample message with SpamAssassin, offline and repeatably.

``spamassassin -L`` runs only local tests (no DNS blocklists, Razor or Pyzor),
so a score does not depend on the network. Bayes is off and nothing is learnt,
and SpamAssassin runs with a private, temporary home and user preferences file,
so a run neither reads nor writes ``~/.spamassassin`` and the same message always
gets the same score. The site-wide configuration (``/etc/spamassassin``) is used
as installed: that is the SpamAssassin a receiving server runs too.

``-t`` appends SpamAssassin's report to the output; its table of
``points  RULE  description`` lines is what we parse.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from .model import SpamResult, SpamRule

TIMEOUT_SECONDS = 120
_SETTINGS = ("use_bayes 0", "bayes_auto_learn 0", "report_safe 0")
_DETAILS_RE = re.compile(r"Content analysis details:\s*\(\s*(-?[\d.]+)\s+points?,\s*(-?[\d.]+)\s+required\)")
_RULE_LINE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*?)\s*$")
_CONTINUATION_RE = re.compile(r"^\s{6,}(\S.*?)\s*$")
_VERSION_RE = re.compile(r"version=([\d.]+)")


class SpamAssassinError(Exception):
    """SpamAssassin ran but gave no usable report (kept apart from user errors on purpose)."""


def spamassassin_path() -> str | None:
    return shutil.which("spamassassin")


def parse_report(output: str) -> SpamResult:
    matches = list(_DETAILS_RE.finditer(output))
    if not matches:
        raise SpamAssassinError("no 'Content analysis details' report in SpamAssassin's output")
    details = matches[-1]  # the report comes last; the message itself might quote the phrase
    score, required = float(details.group(1)), float(details.group(2))
    rules: list[SpamRule] = []
    in_table = False
    for line in output[details.end():].splitlines():
        if line.startswith("----"):
            in_table = True
            continue
        if not in_table:
            continue
        match = _RULE_LINE_RE.match(line)
        if match:
            rules.append(SpamRule(name=match.group(2), score=float(match.group(1)), description=match.group(3)))
            continue
        more = _CONTINUATION_RE.match(line)
        if more and rules:
            last = rules[-1]
            rules[-1] = SpamRule(last.name, last.score, f"{last.description} {more.group(1)}".strip())
            continue
        if line.strip() == "":
            continue
        break
    version = _VERSION_RE.search(output)
    return SpamResult(score=score, required=required, rules=tuple(rules), version=version.group(1) if version else "")


def score_message(message: bytes, executable: str | None = None) -> SpamResult:
    """SpamAssassin's score for ``message``; raises SpamAssassinError when it cannot say."""
    executable = executable or spamassassin_path()
    if executable is None:
        raise SpamAssassinError("spamassassin is not installed")
    with tempfile.TemporaryDirectory(prefix="nl-spamassassin-") as home:
        prefs = os.path.join(home, "user_prefs")
        with open(prefs, "w", encoding="ascii") as handle:
            handle.write("# private preferences for one repeatable run\n")
        command = [executable, "-L", "-t", "-x", "-p", prefs]
        for setting in _SETTINGS:
            command += ["--cf", setting]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPAMASSASSIN", "SA_"))}
        env.update(HOME=home, LANG="C", LC_ALL="C")
        try:
            completed = subprocess.run(
                command, input=message, capture_output=True, env=env, cwd=home, timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise SpamAssassinError(f"spamassassin took longer than {TIMEOUT_SECONDS} s") from None
        except OSError as exc:
            raise SpamAssassinError(f"could not run {executable}: {exc}") from None
    output = completed.stdout.decode("utf-8", "replace")
    try:
        return parse_report(output)
    except SpamAssassinError:
        stderr = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = stderr[-1] if stderr else f"exit status {completed.returncode}"
        raise SpamAssassinError(f"spamassassin gave no report ({detail})") from None
