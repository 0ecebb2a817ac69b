"""What reading one returned message tells us, as plain data that prints and serialises."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

HARD, SOFT, COMPLAINT, AUTO_REPLY, NOT_A_BOUNCE = "hard", "soft", "complaint", "auto-reply", "not-a-bounce"
KINDS = (HARD, SOFT, COMPLAINT, AUTO_REPLY, NOT_A_BOUNCE)

# Reasons that mean "this address or its domain does not exist": the only ones read as hard.
USER_UNKNOWN, HOST_UNKNOWN, BAD_ADDRESS = "user-unknown", "host-unknown", "bad-address"
HARD_REASONS = (USER_UNKNOWN, HOST_UNKNOWN, BAD_ADDRESS)


@dataclass
class Identifiers:
    """What in a report points back at the message we sent."""

    message_ids: list[str] = field(default_factory=list)  # "<id@domain>", ours first when we can tell
    list_id: str = ""
    list_unsubscribe: str = ""
    x_headers: dict[str, str] = field(default_factory=dict)  # X-* headers of the returned message
    original_to: str = ""  # the To of the returned message, lower-cased address
    verp_token: str = ""  # TOKEN of bounces+TOKEN@domain, not yet verified


@dataclass
class Reading:
    kind: str
    recipients: list[str] = field(default_factory=list)
    status: str = ""  # RFC 3463 enhanced status code, when the report gives or implies one
    reason: str = ""
    diagnostic: str = ""  # the remote server's words (shortened), the evidence for the reason
    format: str = ""  # which family of report this was read as (dsn, arf, exim, qmail, …)
    ids: Identifiers = field(default_factory=Identifiers)

    def as_dict(self) -> dict:
        return asdict(self)
