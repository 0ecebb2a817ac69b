"""Staff review: accounts (``accounts``) and approvals bound to the content (``approvals``).

Staff are not subscribers, so none of this is in ``recipients``. The staff pages
that use it are ``newsletters.web.staff``; ``send`` asks ``require_approval``.
"""

from .accounts import SignedIn, StaffAccounts, StaffMember, check_password
from .approvals import (
    ReviewEvent,
    ReviewLog,
    ReviewStatus,
    approval_digest,
    require_approval,
    review_status,
)
from .errors import ReviewError

__all__ = [
    "ReviewError", "ReviewEvent", "ReviewLog", "ReviewStatus", "SignedIn", "StaffAccounts", "StaffMember",
    "approval_digest", "check_password", "require_approval", "review_status",
]
