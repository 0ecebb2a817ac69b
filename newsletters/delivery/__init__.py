"""Sending an issue to the list exactly once: ledger, pipe, rate limit, retries, report, DKIM.

The command line calls ``prepare_send`` (build, checks, counts, the send lock),
shows the plan, then ``SendPlan.execute``; ``send_test`` sends marked test
copies without touching the list; ``list_runs`` is ``newsletter sends``.
See ``ledger`` for the states a subscriber's delivery goes through and why a
resume can neither skip nor repeat anyone.
"""

from .ledger import Ledger, Run, open_ledger
from .report import SUMMARY_KEYS, RunSummary, SendReport, list_runs
from .session import SendPlan, TestResult, message_id, prepare_send, send_test
from .settings import DeliverySettings

__all__ = [
    "DeliverySettings", "Ledger", "Run", "RunSummary", "SUMMARY_KEYS", "SendPlan", "SendReport", "TestResult",
    "list_runs", "message_id", "open_ledger", "prepare_send", "send_test",
]
