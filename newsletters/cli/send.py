"""``newsletter send ISSUE`` and ``newsletter sends``: the plan, the question, the progress, the summary.

All the deciding is in ``newsletters.delivery``; this module shows what it says.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..delivery import list_runs, open_ledger, prepare_send, send_test
from ..delivery.report import resume_hints
from ..errors import DeliveryError
from . import Context, cli, freeze_what_lives_on, pass_ctx

SHOW_NOT_SENT = 10
# Exit statuses a cron job can tell apart (README, "Exactly once").
EXIT_DONE, EXIT_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 3, 130


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:  # a log file or a pipe: do not squeeze tables into 80 columns
        console = Console(highlight=False, width=160)
    return console


@cli.command()
@click.argument("issue", type=click.Path(dir_okay=False))
@click.option("--yes", "-y", is_flag=True, help="Send without asking. Required when not run on a terminal.")
@click.option(
    "--test-to",
    "test_to",
    multiple=True,
    metavar="EMAIL",
    help="Send a [TEST] copy with sample data to EMAIL (repeatable) instead of the list. Records nothing.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send to at most N subscribers this time.")
@click.option(
    "--new-run",
    is_flag=True,
    help="Start a new run even if this issue was sent before: everyone gets it again.",
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help='Also resend messages whose fate is "unknown" (handed over, no reply recorded). Risks a second copy.',
)
@pass_ctx
def send(
    ctx: Context, issue: str, yes: bool, test_to: tuple[str, ...], limit: int | None, new_run: bool, resend_unknown: bool
) -> None:
    """Send ISSUE to every eligible subscriber, exactly once; run it again to resume.

    Exit status: 0 when everyone eligible has been served; 3 when anyone is left
    deferred, of unknown fate or not sent yet (run it again later); 1 on an
    error; 130 after Ctrl-C. On PostgreSQL several senders started with the
    same ISSUE join one run and split it; one that ends while others still run
    exits 0 when its own share is served, 3 when rows of its share are left
    (deferred or unknown); the last one exits as above for the whole run.
    """
    console = _console()
    site = ctx.site
    if test_to:
        build, results, transport = send_test(site, issue, list(test_to))
        console.print(f"Test of [bold]{escape(build.rendered.subject)}[/] via {escape(transport)}")
        for result in results:
            mark = "[green]sent[/]" if result.ok else "[red]not sent[/]"
            console.print(f"  {mark} {escape(result.address)}: {escape(result.reply)}")
        if not all(r.ok for r in results):
            sys.exit(1)
        return

    with prepare_send(site, issue, new_run=new_run, resend_unknown=resend_unknown, limit=limit) as plan:
        _show_plan(console, plan, issue)
        if plan.to_send == 0 and plan.eligible == 0 and plan.run is None:
            console.print(
                "Nobody to send to yet: the subscriber list has no one who may receive the newsletter. "
                "Import your list with `newsletter recipients import subscribers.csv` (or add one person with "
                "`newsletter recipients add EMAIL`), then run this again; `newsletter recipients stats` shows the list."
            )
            return
        if plan.to_send == 0:
            where = f" in run #{plan.run.id}" if plan.run else ""
            console.print(f"Nothing to send: every eligible subscriber has been handled{where}. See `newsletter sends`.")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise DeliveryError(
                    "not sending without confirmation, and there is no terminal to ask on",
                    hint="add --yes to send from a script",
                )
            if not click.confirm(f"Send to {plan.to_send} subscriber{'s' * (plan.to_send != 1)}?", default=False):
                console.print("Nothing sent.")
                sys.exit(1)
        report = _execute(console, plan)
    _show_report(console, report, issue)
    if report.error:
        hint = None if report.error_says_what_to_do else f"fix it, then run `newsletter send {issue}` again to resume"
        raise DeliveryError(report.error, hint=hint)
    if report.stopped and report.status != "done":
        sys.exit(EXIT_INTERRUPTED)
    if report.status != "done":
        sys.exit(EXIT_INCOMPLETE)


def _show_plan(console: Console, plan, issue: str) -> None:
    console.print(f"Issue:      {escape(issue)} ({escape(plan.issue.slug)})")
    console.print(f"Subject:    {escape(plan.subject)}")
    line = f"Recipients: {plan.eligible} eligible, {plan.to_send} to send now"
    if plan.run:
        line += f" (resuming run #{plan.run.id})"
    if plan.limit:
        line += f" (--limit {plan.limit})"
    console.print(line)
    console.print(f"Transport:  {escape(plan.transport_description)}; {plan.settings.describe()}")
    seconds = plan.settings.duration(plan.to_send)
    if seconds and seconds >= 60:
        console.print(f"Duration:   about {_duration(seconds)} at these limits (Ctrl-C stops; run again to resume)")
    if plan.bounce_address:
        local, _, domain = plan.bounce_address.rpartition("@")
        console.print(f"Bounces:    to {escape(local)}+TOKEN@{escape(domain)}, one signed return path per message")
    if plan.outbox:
        console.print(
            "[yellow]No SMTP_HOST is set: messages go to the maildir outbox in the site folder; "
            "nothing is e-mailed.[/]"
        )
    if plan.checks is not None:
        reused = " (same content as the last check: results reused, SpamAssassin not run again)" * plan.checks.reused
        console.print(f"Checks:     {plan.checks.summary()}{reused}")
        for finding in plan.checks.warnings:  # counted above: say which they are
            console.print(f"  warning {escape(finding.rule)} ({escape(finding.where)}): {escape(finding.text)}")
    if plan.review is not None:
        console.print(f"Approved:   by {escape(plan.review.approved_by())}")
    if plan.content_changed:
        console.print(
            "[yellow]The issue changed since this run started: the subscribers still waiting get the new version.[/]"
        )
    if plan.previously_sent:
        console.print(
            f"[yellow]{plan.previously_sent} subscribers already received this issue in earlier runs; "
            "--new-run sends it to them again.[/]"
        )
    if plan.resend_unknown:
        console.print("[yellow]--resend-unknown: messages of unknown fate are sent again; some may arrive twice.[/]")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _execute(console: Console, plan):
    freeze_what_lives_on()
    if not console.is_terminal:
        console.print(f"Sending to {plan.to_send}…")
        said = [None]

        def log_pauses(stats) -> None:  # a log file gets one line when a pause starts or ends
            note = stats.pause_note()
            if (note is None) != (said[0] is None):
                console.print(note or "Resumed: the server accepts again.")
            said[0] = note

        return plan.execute(on_tick=log_pauses)
    columns = (
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("send", total=plan.to_send, rate="")

        def tick(stats) -> None:
            done = stats.handled
            elapsed = progress.tasks[0].elapsed or 0
            rate = f"{done / elapsed:.0f} msg/s" if elapsed > 1 else ""
            progress.update(task, completed=done, rate=escape(stats.pause_note() or rate))

        return plan.execute(on_tick=tick)


def _show_report(console: Console, report, issue: str) -> None:
    summary = report.summary
    table = Table(title=f"Run #{report.run.id} of {escape(report.run.issue_slug)}: {report.status}", title_justify="left")
    table.add_column("outcome")
    table.add_column("subscribers", justify="right")
    table.add_column("this time", justify="right")
    session = report.session
    labels = {
        "sent": "sent (server accepted)",
        "deferred": "deferred (server said later)",
        "failed": "failed (refused for good)",
        "skipped": "skipped (no longer eligible)",
        "unknown": "unknown (no reply recorded)",
    }
    for key, label in labels.items():
        table.add_row(label, str(summary[key]), str(session.get(key, 0)))
    bounced = report.totals.get("bounced", 0)
    if bounced:
        table.add_row("  of the failed: bounced, now off the list", str(bounced), str(session.get("bounced", 0)))
    if report.not_sent_yet:
        table.add_row("not sent yet", str(report.not_sent_yet), "")
    console.print(table)
    if report.workers:
        _show_workers(console, report.workers, mine=report.worker)
    if report.others_running:
        console.print(f"This sender's share is {report.status}; other senders are still running this run, "
                      "and the last of them writes its final status.")
    if report.orphans:
        console.print(
            f"{report.orphans} message(s) were being handed over when an earlier send stopped; they are now unknown."
        )
    shown = [row for row in report.not_sent if row["state"] != "queued"][:SHOW_NOT_SENT]
    for row in shown:
        console.print(f"  {row['state']:9} {escape(row['email'] or '(erased)')}: {escape(row['reply'])}")
    figures = report.bounces
    if any(figures.get(kind) for kind in ("hard", "soft", "complaint")):
        console.print(
            "Reported later: " + ", ".join(f"{_count_and_rate(figures, k)} {k}" for k in ("hard", "soft", "complaint"))
        )
    for warning in figures.get("warnings", []):
        console.print(f"[yellow]{escape(warning)}[/]")
    if report.path:
        console.print(f"Report: {report.path}")
    if report.stopped:
        console.print("Stopped: the messages in flight were finished and recorded." if not report.session.get(
            "abandoned") else "Stopped at once: the messages in flight were left unrecorded (now unknown).")
    if report.session.get("pauses"):
        console.print(f"The server kept refusing: the whole send paused {report.session['pauses']} time(s).")
    if report.status == "incomplete":
        console.print(f"[yellow]Incomplete: {report.left} eligible subscriber(s) not served yet.[/]")
    for hint in resume_hints(report.totals, report.status, issue):
        console.print(f"- {escape(hint)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pass_ctx
def sends(ctx: Context, as_json: bool) -> None:
    """List send runs with their counts (sent, deferred, failed, skipped, unknown) and the hard bounces, soft
    bounces and complaints reported later, with their rates and a warning when a rate is too high."""
    site = ctx.site
    with open_ledger(site) as ledger:
        runs = list_runs(ledger, site.reports_dir)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in runs], indent=2))
        return
    console = _console()
    if not runs:
        console.print("No sends yet.")
        return
    table = Table()
    columns = ("run", "issue", "started", "status", "sent", "deferred", "failed", "skipped", "unknown", "not yet",
               "hard", "soft", "complaints")
    for column in columns:
        table.add_column(column, justify="right" if column not in ("issue", "status", "started") else "left")
    for r in runs:
        s = r.summary
        table.add_row(
            str(r.run.id),
            escape(r.run.issue_slug),
            r.run.created_at.strftime("%Y-%m-%d %H:%M"),
            r.run.status,
            *(str(s[k]) for k in ("sent", "deferred", "failed", "skipped", "unknown")),
            str(r.queued),
            *(_count_and_rate(r.bounces, kind) for kind in ("hard", "soft", "complaint")),
        )
    console.print(table)
    for r in runs:
        if r.workers:
            console.print(f"run #{r.run.id}: {len(r.workers)} sender(s)")
            _show_workers(console, r.workers, indent="  ")
            if r.run.status == "running" and not any(w.get("alive") for w in r.workers):
                console.print(f"  [yellow]no sender is running it any more: run `newsletter send "
                              f"{escape(r.run.issue_path)} --yes` to resume[/]")
    for r in runs:
        for warning in r.bounces.get("warnings", []):
            console.print(f"[yellow]run #{r.run.id}: {escape(warning)}[/]")


def _show_workers(console: Console, workers: list[dict], mine: int | None = None, indent: str = "") -> None:
    """One line per sender of a run (several senders on one PostgreSQL): host, pid, status, its rows' counts."""
    for w in workers:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(w["counts"].items())) or "nothing yet"
        this = " (this one)" if w["worker"] == mine else ""
        status = w["status"]
        if status == "running" and w.get("alive") is False:
            status = "running no more (its process ended without a word: killed, or its machine stopped)"
        console.print(f"{indent}sender {w['worker']} on {escape(w['host'])}, pid {w['pid']}: {status}{this}; "
                      f"{escape(counts)}")


def _count_and_rate(figures: dict, kind: str) -> str:
    """"3 (0.25%)": reports of this kind that came back later, and their share of the messages accepted."""
    count = figures.get(kind, 0)
    return f"{count} ({figures.get(kind + '_rate', 0.0):.2%})" if count else "0"
