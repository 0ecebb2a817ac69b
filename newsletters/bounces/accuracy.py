"""The figures that say how well the reader reads: shared by the fixture test and ``bench/bounces.py``.

Each figure is a share of the fixtures it applies to, so a new fixture never
needs a new threshold: recipients found (of those whose expected reading
names any), hard read as hard, soft read as hard (the costly error),
complaints found, and auto-replies read as hard (must stay zero).
"""

from __future__ import annotations

from dataclasses import dataclass

from .reading import AUTO_REPLY, COMPLAINT, HARD, SOFT, Reading


@dataclass
class Accuracy:
    recipient_found: float
    hard_as_hard: float
    soft_as_hard: float
    complaints_found: float
    auto_replies_as_hard: int
    kind_right: float
    messages: int

    def lines(self) -> list[str]:
        return [
            f"recipient found      {self.recipient_found:6.1%}  (need >= 95%)",
            f"hard read as hard    {self.hard_as_hard:6.1%}  (need >= 90%)",
            f"soft read as hard    {self.soft_as_hard:6.1%}  (need <= 3%)",
            f"complaints found     {self.complaints_found:6.1%}  (need >= 90%)",
            f"auto-replies as hard {self.auto_replies_as_hard:6d}  (need 0)",
            f"kind right           {self.kind_right:6.1%}  over {self.messages} messages",
        ]


def _share(hits: int, total: int) -> float:
    return hits / total if total else 1.0


def score(pairs: list[tuple[dict, Reading]]) -> Accuracy:
    """``pairs``: (expected reading as in expected.toml, actual reading)."""
    with_rcpt = [(e, r) for e, r in pairs if e["recipients"]]
    found = sum(1 for e, r in with_rcpt if set(e["recipients"]) <= set(r.recipients))
    hard = [r for e, r in pairs if e["kind"] == HARD]
    soft = [r for e, r in pairs if e["kind"] == SOFT]
    complaints = [r for e, r in pairs if e["kind"] == COMPLAINT]
    autos = [r for e, r in pairs if e["kind"] == AUTO_REPLY]
    return Accuracy(
        recipient_found=_share(found, len(with_rcpt)),
        hard_as_hard=_share(sum(r.kind == HARD for r in hard), len(hard)),
        soft_as_hard=_share(sum(r.kind == HARD for r in soft), len(soft)),
        complaints_found=_share(sum(r.kind == COMPLAINT for r in complaints), len(complaints)),
        auto_replies_as_hard=sum(r.kind == HARD for r in autos),
        kind_right=_share(sum(e["kind"] == r.kind for e, r in pairs), len(pairs)),
        messages=len(pairs),
    )
