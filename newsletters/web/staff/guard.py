"""Who is signed in, and the CSRF token their forms must carry.

The session cookie holds only a random token (the database keeps its SHA-256):
HttpOnly, SameSite=Lax, Secure when PUBLIC_URL is https, scoped to /staff/.
Every form carries a token: the sign-in form a signed one (there is no session
yet), every other form the session's own, compared in constant time.
"""

from __future__ import annotations

import secrets

from flask import abort, g, request

from recipients.tokens import form_token_ok, make_form_token

from ...review import SignedIn, StaffAccounts

COOKIE = "newsletter_staff"
COOKIE_PATH = "/staff/"


def current(accounts: StaffAccounts) -> SignedIn | None:
    """The signed-in staff member of this request (looked up once per request)."""
    if "staff" not in g:
        g.staff = accounts.session(request.cookies.get(COOKIE))
    return g.staff


def set_session_cookie(response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=secure)


def clear_session_cookie(response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=secure)


def sign_in_form_token(key: str) -> str:
    return make_form_token(key)


def require_sign_in_token(key: str) -> None:
    if not form_token_ok(key, request.form.get("csrf_token", "")):
        abort(400, "This form has expired or did not come from this site. Open the page again and resubmit it.")


def require_csrf(signed_in: SignedIn) -> None:
    """Refuse a form that lacks this session's token: another site cannot post for a signed-in person."""
    given = request.form.get("csrf_token", "")
    if not given or not secrets.compare_digest(given.encode(), signed_in.csrf_token.encode()):
        abort(400, "This form did not carry its security token. Open the page again and resubmit it.")
