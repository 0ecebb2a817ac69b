"""Approvals bound to the exact content, and the rule ``send`` enforces with ``[review] required``.

Every review event (approve, request changes, comment, test send) records the
*approval digest* of the build the person looked at. That digest covers the
rendered subject, HTML and plain text (``content_digest`` of the delivery, the
same one a send run records), so any edit to an article, a template, the brand
or the issue's wording changes it; it also covers the issue file's bytes (an
accepted check finding changes nothing rendered, yet is a decision a reviewer
should see) and the sender, which the rendered parts do not hold. An approval
of another digest no longer counts: it is *voided*, and the pages say so.

Who counts is decided now, not when the event was written: only the latest
decision of each person on this digest, and only while that person still has a
reviewer account. A request for changes on the current build by a reviewer
blocks the send until that reviewer approves or the content changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from foundation import migrate
from foundation.database import create_engine
from foundation.tables import (
    APPROVED,
    CHANGES_REQUESTED,
    REVIEW_KINDS,
    REVIEWER,
    TEST_SENT,
    review_events,
    staff_accounts,
    utcnow,
)

from .accounts import StaffMember, write_transaction
from .errors import ReviewError

MAX_COMMENT = 4000
TEST_SEND_WINDOW = timedelta(hours=1)
TEST_SENDS_PER_WINDOW = 5


def approval_digest(site, issue_path: Path, rendered_digest: str) -> str:
    """What an approval is bound to: the rendered parts' digest, the issue file and the sender."""
    h = hashlib.sha256()
    config = site.config
    parts = (rendered_digest, config.sender_name, config.sender_address, config.sender_reply_to)
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    h.update(Path(issue_path).read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ReviewEvent:
    id: int
    issue_slug: str
    digest: str
    staff_id: int
    name: str
    email: str
    role: str
    kind: str
    comment: str
    at: datetime

    def to_json(self) -> dict:
        return {"name": self.name, "email": self.email, "role": self.role, "kind": self.kind,
                "comment": self.comment, "at": self.at.isoformat(), "content_digest": self.digest}


@dataclass(frozen=True)
class ReviewStatus:
    """Where one build of an issue stands: who approved it, who asked for changes, what is missing."""

    issue_slug: str
    digest: str
    required: bool
    needed: int
    approvals: list[ReviewEvent] = field(default_factory=list)  # current reviewers, this build
    changes_requested: list[ReviewEvent] = field(default_factory=list)  # current reviewers, this build
    voided: list[ReviewEvent] = field(default_factory=list)  # approvals of an earlier build

    @property
    def approved(self) -> bool:
        return len(self.approvals) >= self.needed and not self.changes_requested

    def missing(self) -> str:
        """What stands between this build and ``send``, in one sentence ("" when nothing)."""
        reasons = []
        if len(self.approvals) < self.needed:
            have = len(self.approvals)
            reasons.append(f"{self.needed - have} more approval{'s' * (self.needed - have != 1)} by a reviewer "
                           f"({have} of {self.needed})")
        for event in self.changes_requested:
            reasons.append(f"{event.name} asked for changes on {event.at:%Y-%m-%d %H:%M} UTC")
        if self.voided and len(self.approvals) < self.needed:
            names = ", ".join(sorted({e.name for e in self.voided}))
            reasons.append(f"the approval by {names} was for an earlier version: the issue, an article, a template "
                           "or the brand changed since")
        return "; ".join(reasons)

    def approved_by(self) -> str:
        return ", ".join(f"{e.name} <{e.email}> on {e.at:%Y-%m-%d %H:%M} UTC" for e in self.approvals)

    def to_json(self) -> dict:
        return {
            "issue": self.issue_slug,
            "content_digest": self.digest,
            "required": self.required,
            "approvals_needed": self.needed,
            "approved": self.approved,
            "missing": self.missing(),
            "approvals": [e.to_json() for e in self.approvals],
            "changes_requested": [e.to_json() for e in self.changes_requested],
            "voided_approvals": [e.to_json() for e in self.voided],
        }


def _event(row) -> ReviewEvent:
    return ReviewEvent(id=row.id, issue_slug=row.issue_slug, digest=row.content_digest, staff_id=row.staff_id,
                       name=row.staff_name, email=row.staff_email, role=row.staff_role, kind=row.kind,
                       comment=row.comment, at=row.at)


class ReviewLog:
    """The review events of every issue, on the site's database."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    @classmethod
    def open(cls, site) -> "ReviewLog":
        engine = create_engine(site.database_url)
        migrate.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, issue_slug: str, digest: str, member: StaffMember, kind: str, comment: str = "") -> None:
        if kind not in REVIEW_KINDS:
            raise ReviewError(f"unknown review event {kind!r}")
        if kind == APPROVED and not member.can_approve:
            raise ReviewError(f"{member.name} is an editor: only reviewers approve")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT:
            raise ReviewError(f"the comment is longer than {MAX_COMMENT} characters")
        with write_transaction(self.engine) as conn:
            conn.execute(review_events.insert().values(
                issue_slug=issue_slug, content_digest=digest, staff_id=member.id, staff_email=member.email,
                staff_name=member.name, staff_role=member.role, kind=kind, comment=comment, at=utcnow(),
            ))

    def events(self, issue_slug: str) -> list[ReviewEvent]:
        """Every event of the issue, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(review_events).where(review_events.c.issue_slug == issue_slug)
                                .order_by(review_events.c.id)).all()
        return [_event(row) for row in rows]

    def test_sends_left(self, member: StaffMember) -> int:
        """How many more test sends this person may make now (TEST_SENDS_PER_WINDOW an hour)."""
        e = review_events.c
        with self.engine.connect() as conn:
            used = conn.execute(sa.select(sa.func.count()).select_from(review_events).where(
                e.staff_id == member.id, e.kind == TEST_SENT, e.at > utcnow() - TEST_SEND_WINDOW)).scalar_one()
        return max(0, TEST_SENDS_PER_WINDOW - used)

    def status(self, issue_slug: str, digest: str, *, required: bool, needed: int) -> ReviewStatus:
        with self.engine.connect() as conn:
            reviewers = {row.id for row in conn.execute(
                sa.select(staff_accounts.c.id).where(staff_accounts.c.role == REVIEWER))}
        latest: dict[int, ReviewEvent] = {}  # staff id -> latest decision on this build
        voided: dict[int, ReviewEvent] = {}
        for event in self.events(issue_slug):
            if event.kind not in (APPROVED, CHANGES_REQUESTED) or event.staff_id not in reviewers:
                continue
            if event.digest == digest:
                latest[event.staff_id] = event
            elif event.kind == APPROVED:
                voided[event.staff_id] = event
        approvals = [e for e in latest.values() if e.kind == APPROVED]
        changes = [e for e in latest.values() if e.kind == CHANGES_REQUESTED]
        still_voided = [e for sid, e in voided.items() if sid not in latest]
        return ReviewStatus(issue_slug, digest, required, needed, approvals, changes, still_voided)


def review_status(site, build, rendered_digest: str) -> ReviewStatus:
    """The review status of this build of an issue, by the site's ``[review]`` rule."""
    config = site.config
    log = ReviewLog.open(site)
    try:
        digest = approval_digest(site, build.issue.path, rendered_digest)
        return log.status(build.issue.slug, digest, required=config.review_required, needed=config.review_approvals)
    finally:
        log.close()


def require_approval(site, build, rendered_digest: str) -> ReviewStatus | None:
    """``send``'s gate: with ``[review] required = true``, refuse unless this build is approved.

    Called right after the build and checks, before any connection is made.
    Returns the status (who approved, when) for the plan and the run report;
    None when the site requires no review.
    """
    if not site.config.review_required:
        return None
    status = review_status(site, build, rendered_digest)
    if not status.approved:
        raise ReviewError(
            f"issue {build.issue.slug} is not approved for sending: {status.missing()}",
            where=str(build.issue.path),
            hint="a reviewer approves it on the staff pages of `newsletter serve` (/staff/); "
                 f"`newsletter review status {build.issue.path.name}` shows where it stands",
        )
    return status
