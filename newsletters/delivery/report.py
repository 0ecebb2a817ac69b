"""The account of a send run: totals, what this session did, and everyone not yet served.

The totals come from the ledger, not from counters in memory, so a report
written after a resume describes the whole run, and a crash between two
sessions cannot make the numbers lie. Every subscriber of the run without an
accepted message is listed by name of state (deferred, failed, bounced,
skipped, unknown, queued) with the server's last reply: nobody goes missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..bounces.tally import bounce_figures, run_bounce_counts
from ..build import write_atomically
from .ledger import BOUNCED, DEFERRED, FAILED, QUEUED, SENDING, SENT, SKIPPED, UNKNOWN, Ledger, Run
from .pipe import SessionStats
from .workers import worker_counts

# The summary everyone sees; "failed" includes the bounced.
SUMMARY_KEYS = ("sent", "deferred", "failed", "skipped", "unknown")


def summarize(counts: dict[str, int]) -> dict[str, int]:
    return {
        "sent": counts.get(SENT, 0),
        "deferred": counts.get(DEFERRED, 0),
        "failed": counts.get(FAILED, 0) + counts.get(BOUNCED, 0),
        "skipped": counts.get(SKIPPED, 0),
        "unknown": counts.get(UNKNOWN, 0) + counts.get(SENDING, 0),
    }


@dataclass
class SendReport:
    run: Run
    status: str
    totals: dict[str, int]  # ledger states
    session: dict[str, int]
    not_sent: list[dict]
    outstanding: dict[str, int] = field(default_factory=dict)  # eligible, not served yet, by state (Ledger.outstanding)
    orphans: int = 0  # rows a killed earlier session left in "sending", now "unknown"
    error: str | None = None
    error_says_what_to_do: bool = False  # the error carries its own hint; the CLI adds none
    stopped: bool = False  # by Ctrl-C / SIGTERM
    issue_path: str = ""
    path: Path | None = None
    resume_hints: list[str] = field(default_factory=list)
    review: dict | None = None  # who approved this content and when, when the site requires a review
    bounces: dict = field(default_factory=dict)  # hard, soft, complaint reported later, rates, warnings (tally)
    # Several senders on one PostgreSQL (``workers``): this sender's id, whether others still run the run
    # (then ``status`` is this sender's share, not the run's), and every sender of the run with its counts.
    worker: int | None = None
    others_running: bool = False
    workers: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.totals)

    @property
    def not_sent_yet(self) -> int:
        """Eligible people nobody has tried yet: queued rows, and those the pass did not reach."""
        return self.outstanding.get(QUEUED, 0) + self.outstanding.get("not_queued", 0)

    @property
    def left(self) -> int:
        """Eligible people not served: not sent yet, deferred, or of unknown fate. 0 means done."""
        return sum(self.outstanding.values())

    def to_json(self) -> dict:
        return {
            "run": self.run.id,
            "issue": self.run.issue_slug,
            "issue_path": self.run.issue_path,
            "subject": self.run.subject,
            "status": self.status,
            "transport": self.run.transport,
            "sessions": self.run.sessions,
            "created_at": _iso(self.run.created_at),
            "updated_at": _iso(self.run.updated_at),
            "finished_at": _iso(self.run.finished_at),
            "summary": self.summary,
            "details": {
                "bounced": self.totals.get(BOUNCED, 0),
                "queued": self.totals.get(QUEUED, 0),
                "total": sum(self.totals.values()),
            },
            "bounces": self.bounces,
            "not_sent_yet": self.not_sent_yet,
            "left": self.left,
            "outstanding": self.outstanding,
            "this_session": self.session,
            "unknown_from_earlier_session": self.orphans,
            "error": self.error,
            "next_steps": self.resume_hints,
            "review": self.review,
            "not_sent": self.not_sent,
            "worker": self.worker,
            "others_running": self.others_running,
            "workers": self.workers,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def resume_hints(totals: dict[str, int], status: str, issue_path: str, not_sent_yet: int = 0) -> list[str]:
    command = f"newsletter send {issue_path}"
    hints = []
    if status != "done" or not_sent_yet:
        waiting = f"{not_sent_yet} not sent yet; " if not_sent_yet else ""
        hints.append(f"not finished: {waiting}run `{command}` again to resume; nobody already served gets a second copy")
    if totals.get(DEFERRED, 0):
        hints.append(f"{totals[DEFERRED]} deferred by the server: run `{command}` again later to retry them")
    unknown = totals.get(UNKNOWN, 0) + totals.get(SENDING, 0)
    if unknown:
        hints.append(
            f"{unknown} unknown (handed over, no reply recorded; they may have arrived): "
            f"`{command} --resend-unknown` sends them again, risking a second copy"
        )
    return hints


def build_report(
    ledger: Ledger, run: Run, stats: SessionStats, *, site=None, orphans: int = 0, skipped_now: int = 0,
    outstanding: dict[str, int] | None = None,
    review=None,
) -> SendReport:
    outstanding = outstanding or {}
    not_sent_yet = outstanding.get(QUEUED, 0) + outstanding.get("not_queued", 0)
    totals = ledger.counts(run.id)
    with ledger.handover.engine.connect() as conn:
        bounces = bounce_figures(run_bounce_counts(conn, [run.id]).get(run.id), totals.get(SENT, 0))
    session = {
        "sent": stats.counts.get(SENT, 0),
        "deferred": stats.counts.get("deferred", 0),
        "retried": stats.counts.get("retried", 0),
        "failed": stats.counts.get(FAILED, 0) + stats.counts.get(BOUNCED, 0),
        "bounced": stats.counts.get(BOUNCED, 0),
        "unknown": stats.counts.get(UNKNOWN, 0),
        # Refused at their claim (they left while the send ran), and found ineligible at the end of the pass.
        "skipped": stats.counts.get(SKIPPED, 0) + skipped_now,
        "already_done_before": sum(stats.already.values()),
        "claimed_elsewhere": stats.counts.get("lost_claim", 0),
        "pauses": stats.backoff.pauses if stats.backoff else 0,
        "abandoned": stats.abandoned,
    }
    not_sent = [
        {
            "subscriber_id": row.subscriber_id,
            "email": row.email,
            "state": row.state,
            "attempts": row.attempts,
            "reply": f"{row.reply_code} {row.reply_text}" if row.reply_code else (row.reply_text or ""),
        }
        for row in ledger.unresolved(run.id)
    ]
    return SendReport(
        run=run,
        status=run.status,
        totals=totals,
        session=session,
        not_sent=not_sent,
        outstanding=outstanding,
        orphans=orphans,
        error=str(stats.error) if stats.error else None,
        error_says_what_to_do=bool(getattr(stats.error, "hint", None)),
        stopped=stats.stopped,
        resume_hints=resume_hints(totals, run.status, run.issue_path, not_sent_yet),
        review=review.to_json() if review is not None else None,
        bounces=bounces,
    )


def report_path(reports_dir: Path, run: Run) -> Path:
    return Path(reports_dir) / f"send-{run.issue_slug}-run{run.id}.json"


def write_report(reports_dir: Path, report: SendReport) -> Path:
    """Write the report atomically (a reader never sees half a file); one file per run, rewritten each session."""
    path = report_path(reports_dir, report.run)
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    write_atomically({path: text.encode("utf-8")})
    return path


@dataclass(frozen=True)
class RunSummary:
    run: Run
    summary: dict[str, int]
    queued: int  # eligible, not sent yet: queued rows, plus (latest run of an issue) those not queued yet
    report: Path
    bounces: dict = field(default_factory=dict)  # bounce_figures: hard, soft, complaint, their rates, warnings
    workers: list[dict] = field(default_factory=list)  # several senders (PostgreSQL): each with host, pid, counts

    def to_json(self) -> dict:
        """One row of ``newsletter sends --json``: flat, so scripts need no nested lookups."""
        return {
            "run": self.run.id,
            "issue": self.run.issue_slug,
            "subject": self.run.subject,
            "status": self.run.status,
            "created_at": self.run.created_at.isoformat(),
            "updated_at": self.run.updated_at.isoformat(),
            **self.summary,
            "queued": self.queued,
            **{k: v for k, v in self.bounces.items() if k != "warnings"},
            "warnings": self.bounces.get("warnings", []),
            "report": str(self.report),
            "workers": self.workers,
        }


def list_runs(ledger: Ledger, reports_dir: Path) -> list[RunSummary]:
    """Every send run, oldest first, with its totals (for ``newsletter sends``).

    "Not sent yet" is counted as the report counts it: for the latest run of an
    issue (the one a resume continues), every eligible person it has not tried.
    """
    runs = ledger.runs()
    latest = {run.issue_slug: run.id for run in runs}
    eligible = ledger.handover.eligible_ids()
    with ledger.handover.engine.connect() as conn:
        bounced = run_bounce_counts(conn)
    out = []
    for run in runs:
        counts = ledger.counts(run.id)
        if latest[run.issue_slug] == run.id:
            outstanding = ledger.outstanding(run.id, eligible)
            waiting = outstanding.get(QUEUED, 0) + outstanding.get("not_queued", 0)
        else:
            waiting = counts.get(QUEUED, 0)
        summary = summarize(counts)
        figures = bounce_figures(bounced.get(run.id), summary["sent"])
        with ledger.engine.connect() as conn:
            workers = worker_counts(conn, run.id)
        out.append(RunSummary(run, summary, waiting, report_path(reports_dir, run), figures, workers))
    return out
