"""What came back, counted per send run, and the recent reports: for ``newsletter sends``, the run report and
``newsletter bounces list``.

Counts are of people, not reports: a subscriber whose mailbox was full three
times during one run is one soft bounce of that run. Only reports matched to
the run count; unmatched ones have no run. Rates are against the messages the
run had accepted (``sent``). Gmail and Yahoo ask senders to keep complaints
below 0.1% and throttle from 0.3%; mailing dead addresses is their other
sign of a careless sender, hence a warning from 2% hard bounces.
"""

from __future__ import annotations

import sqlalchemy as sa

from foundation.tables import bounce_events, send_runs, subscribers

from .reading import COMPLAINT, HARD, SOFT

COUNTED_KINDS = (HARD, SOFT, COMPLAINT)
COMPLAINT_WARNING = 0.001
HARD_WARNING = 0.02


def run_bounce_counts(conn: sa.Connection, run_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{run_id: {"hard": n, "soft": n, "complaint": n}} for runs with matched reports."""
    query = (
        sa.select(bounce_events.c.run_id, bounce_events.c.kind, sa.func.count(sa.distinct(bounce_events.c.subscriber_id)))
        .where(bounce_events.c.run_id.is_not(None), bounce_events.c.kind.in_(COUNTED_KINDS))
        .group_by(bounce_events.c.run_id, bounce_events.c.kind)
    )
    if run_ids is not None:
        query = query.where(bounce_events.c.run_id.in_(run_ids))
    counts: dict[int, dict[str, int]] = {}
    for run_id, kind, n in conn.execute(query):
        counts.setdefault(run_id, dict.fromkeys(COUNTED_KINDS, 0))[kind] = n
    return counts


def bounce_figures(counts: dict[str, int] | None, sent: int) -> dict:
    """Counts, rates (0–1, against ``sent``) and the warnings a sender should act on."""
    counts = counts or {}
    figures: dict = {kind: counts.get(kind, 0) for kind in COUNTED_KINDS}
    for kind in COUNTED_KINDS:
        figures[f"{kind}_rate"] = figures[kind] / sent if sent else 0.0
    warnings = []
    if sent and figures["complaint_rate"] >= COMPLAINT_WARNING:
        warnings.append(
            f"complaint rate {figures['complaint_rate']:.2%} reaches {COMPLAINT_WARNING:.1%}: Gmail and Yahoo throttle "
            "senders from 0.3%; make sure everyone on the list asked for it and the unsubscribe link is easy to find"
        )
    if sent and figures["hard_rate"] >= HARD_WARNING:
        warnings.append(
            f"hard-bounce rate {figures['hard_rate']:.2%} reaches {HARD_WARNING:.0%}: the list holds dead addresses; "
            "check where they came from (an old import?)"
        )
    figures["warnings"] = warnings
    return figures


def recent_events(conn: sa.Connection, limit: int = 50) -> list[dict]:
    """The latest processed reports, newest first, with the subscriber's address where matched (and not erased)."""
    query = (
        sa.select(
            bounce_events, subscribers.c.email, send_runs.c.issue_slug,
        )
        .select_from(
            bounce_events.outerjoin(subscribers, subscribers.c.id == bounce_events.c.subscriber_id)
            .outerjoin(send_runs, send_runs.c.id == bounce_events.c.run_id)
        )
        .order_by(bounce_events.c.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": row.id,
            "received_at": row.received_at.isoformat(),
            "source": row.source,
            "kind": row.kind,
            "status": row.status,
            "reason": row.reason,
            "action": row.action or "pending",
            "run_id": row.run_id,
            "issue": row.issue_slug,
            "subscriber_id": row.subscriber_id,
            "email": row.email,
            "evidence": row.summary,
        }
        for row in conn.execute(query)
    ]
