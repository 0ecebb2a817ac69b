"""How well and how fast the bounce reader reads our fixtures, and how GNU Mailman's flufl.bounce does on them.

    .venv/bin/python bench/bounces.py [-n 10000]

1. accuracy of ``newsletters.bounces.reader.read_message`` over tests/fixtures/bounces
   (the same figures the test asserts);
2. the same figures for flufl.bounce's detectors, when it is installed
   (``pip install flufl.bounce``; it is not a dependency): recipients from
   ``all_failures`` (temporary | permanent), "hard" meaning the address is in the
   permanent set; it has no notion of complaints or auto-replies;
3. speed: reading N messages (the fixtures repeated), against the reference of
   only parsing them with ``email.message_from_bytes``, and flufl.bounce's time
   over the same N. Wall-clock depends on the machine; the ratio is the result.
   Target: N = 10,000 in under 30 s.
"""

from __future__ import annotations

import argparse
import email
import logging
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletters.bounces.reader import read_message  # noqa: E402
from newsletters.bounces.accuracy import score  # noqa: E402
from newsletters.bounces.reading import HARD, NOT_A_BOUNCE, SOFT, Reading  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "bounces"

try:
    from flufl.bounce import all_failures
except ImportError:  # optional: only for the comparison
    all_failures = None


def load() -> list[tuple[str, dict, bytes]]:
    expected = tomllib.loads((FIXTURES / "expected.toml").read_text(encoding="utf-8"))
    return [(name, exp, (FIXTURES / name).read_bytes()) for name, exp in sorted(expected.items())]


def flufl_reading(raw: bytes) -> Reading:
    """flufl.bounce's answer in our terms: permanent -> hard, temporary only -> soft, nothing -> not a bounce."""
    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception as exc:  # it is a comparison: a crash counts as "found nothing"
        return Reading(NOT_A_BOUNCE, reason="crashed", diagnostic=type(exc).__name__)
    decode = lambda found: [a.decode("ascii", "replace").lower().strip("<>") for a in found]  # noqa: E731
    if permanent:
        return Reading(HARD, decode(permanent) + decode(temporary))
    if temporary:
        return Reading(SOFT, decode(temporary))
    return Reading(NOT_A_BOUNCE)


def timed(fn, messages: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in messages:
        fn(raw)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="messages to read for the speed figure")
    args = parser.parse_args()
    fixtures = load()
    print(f"{len(fixtures)} fixtures, {len({e.get('mta') for _n, e, _r in fixtures} - {'none'})} MTA/provider shapes\n")

    print("ours (newsletters.bounces):")
    ours = score([(exp, read_message(raw)) for _name, exp, raw in fixtures])
    print("  " + "\n  ".join(ours.lines()))
    if all_failures is not None:
        print("\nflufl.bounce (all_failures):")
        logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # it logs a traceback per crash
        theirs = [(exp, flufl_reading(raw)) for _name, exp, raw in fixtures]
        crashed = [name for (name, _e, _r), (_e2, r) in zip(fixtures, theirs) if r.reason == "crashed"]
        print(f"  crashed on {len(crashed)} message(s): {', '.join(crashed)}" if crashed else "  crashed on none")
        print("  " + "\n  ".join(score(theirs).lines()))
        bounces = [(e, r) for e, r in theirs if e["kind"] in (HARD, SOFT)]
        print(f"  bounces detected at all {sum(r.kind != NOT_A_BOUNCE for _e, r in bounces)}/{len(bounces)}")
    else:
        print("\nflufl.bounce is not installed: `.venv/bin/pip install flufl.bounce` to compare")

    messages = [raw for _name, _exp, raw in fixtures]
    messages = (messages * (args.n // len(messages) + 1))[: args.n]
    parse = timed(email.message_from_bytes, messages)
    read = timed(read_message, messages)
    print(f"\nspeed over {len(messages)} messages ({sum(map(len, messages)) / 1e6:.1f} MB):")
    print(f"  parse only (reference) {parse:6.2f} s  {len(messages) / parse:8.0f} msgs/s")
    print(f"  ours                   {read:6.2f} s  {len(messages) / read:8.0f} msgs/s  ({read / parse:.1f}x the parse)"
          f"  target < 30 s: {'ok' if read < 30 else 'MISSED'}")
    if all_failures is not None:
        theirs_time = timed(flufl_reading, messages)
        print(f"  flufl.bounce           {theirs_time:6.2f} s  {len(messages) / theirs_time:8.0f} msgs/s")


if __name__ == "__main__":
    main()
