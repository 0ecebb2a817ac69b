"""Staff accounts: who may sign in to the staff pages, with which role, and their passwords.

Staff are not subscribers, so they live in their own table and never touch the
list. Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's
second recommended setting); the hash carries its own salt and parameters, so
stronger settings later only need ``needs_rehash`` at the next sign-in. A
password is never stored, printed or logged; changing it (or removing the
account) ends every session of that person.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from foundation import migrate
from foundation.database import create_engine
from foundation.tables import (
    EDITOR,
    REVIEWER,
    STAFF_ROLES,
    staff_accounts,
    staff_sessions,
    staff_sign_in_failures,
    utcnow,
)
from recipients.addresses import InvalidAddress, name_problem, normalize_email

from .errors import ReviewError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 would hash more, but nobody types it; a cap stops a costly request
SESSION_IDLE = timedelta(hours=12)
SEEN_EVERY = timedelta(minutes=1)
# Sign-in throttling: failures in the last minute, per account and per client address.
THROTTLE_WINDOW = timedelta(minutes=1)
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 20

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so a wrong address costs as long as a wrong password.

    Made on first use, not at import: hashing takes ~90 ms, and every command
    (``send`` among them) imports this module.
    """
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    name: str
    role: str
    created_at: datetime

    @property
    def can_approve(self) -> bool:
        return self.role == REVIEWER


@dataclass(frozen=True)
class SignedIn:
    """A valid session: who it is and the CSRF token every form of theirs must carry."""

    member: StaffMember
    csrf_token: str


def _member(row) -> StaffMember:
    return StaffMember(id=row.id, email=row.email, name=row.name, role=row.role, created_at=row.created_at)


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing (NIST SP 800-63B: length, not composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ReviewError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long",
            hint="a few unrelated words make a long password that is easy to type",
        )
    if len(password) > MAX_PASSWORD_LENGTH or "\n" in password or "\r" in password:
        raise ReviewError("the password must be one line of at most 1024 characters")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that takes SQLite's write lock at BEGIN: concurrent page loads then wait their turn
    (busy_timeout) instead of failing to upgrade a read lock ("database is locked")."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def account_key(email: str) -> str:
    """How an account is looked up: the validated address, all lower case (staff type it either way)."""
    try:
        return normalize_email(email).lower()
    except InvalidAddress:
        return (email or "").strip().lower()[:320]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StaffAccounts:
    """Accounts, sessions and the sign-in throttle, on the site's database."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    @classmethod
    def open(cls, site) -> "StaffAccounts":
        """The site's database (DATABASE_URL or newsletter.db), migrated to the newest schema."""
        engine = create_engine(site.database_url)
        migrate.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "StaffAccounts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- accounts ------------------------------------------------------------------------
    @staticmethod
    def normalize(email: str) -> str:
        try:
            return normalize_email(email).lower()
        except InvalidAddress as exc:
            raise ReviewError(f"not a usable e-mail address: {email!r} ({exc})") from None

    def add(self, email: str, name: str, role: str, password: str) -> StaffMember:
        email = self.normalize(email)
        if role not in STAFF_ROLES:
            raise ReviewError(f"role must be {REVIEWER} or {EDITOR}, not {role!r}")
        name = name.strip()
        if not name or name_problem(name):
            raise ReviewError(f"the name {name!r} is empty or holds line breaks, links or codes")
        check_password(password)
        now = utcnow()
        with write_transaction(self.engine) as conn:
            if conn.execute(sa.select(staff_accounts.c.id).where(staff_accounts.c.email == email)).first():
                raise ReviewError(f"{email} already has a staff account",
                                  hint="use `newsletter staff reset-password` to change its password")
            conn.execute(staff_accounts.insert().values(
                email=email, name=name[:100], role=role, password_hash=_hasher.hash(password),
                created_at=now, password_changed_at=now,
            ))
        return self.get(email)

    def find(self, email: str) -> StaffMember | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(staff_accounts).where(staff_accounts.c.email == account_key(email))).first()
        return _member(row) if row else None

    def get(self, email: str) -> StaffMember:
        member = self.find(email)
        if member is None:
            raise ReviewError(f"no staff account for {email}", hint="`newsletter staff list` shows the accounts")
        return member

    def by_id(self, staff_id: int) -> StaffMember | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(staff_accounts).where(staff_accounts.c.id == staff_id)).first()
        return _member(row) if row else None

    def members(self) -> list[StaffMember]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(staff_accounts).order_by(staff_accounts.c.email)).all()
        return [_member(row) for row in rows]

    def remove(self, email: str) -> StaffMember:
        member = self.get(email)
        with write_transaction(self.engine) as conn:
            conn.execute(staff_sessions.delete().where(staff_sessions.c.staff_id == member.id))
            conn.execute(staff_accounts.delete().where(staff_accounts.c.id == member.id))
        return member

    def reset_password(self, email: str, password: str) -> StaffMember:
        """A new password; every session of the account ends (someone may have known the old one)."""
        member = self.get(email)
        check_password(password)
        with write_transaction(self.engine) as conn:
            conn.execute(staff_accounts.update().where(staff_accounts.c.id == member.id).values(
                password_hash=_hasher.hash(password), password_changed_at=utcnow(),
            ))
            conn.execute(staff_sessions.delete().where(staff_sessions.c.staff_id == member.id))
        return member

    # -- signing in ----------------------------------------------------------------------
    def throttled(self, email: str, address: str) -> bool:
        """True when this account or this client address failed too often in the last minute."""
        since = utcnow() - THROTTLE_WINDOW
        f = staff_sign_in_failures.c
        count = sa.select(sa.func.count()).select_from(staff_sign_in_failures)
        with self.engine.connect() as conn:
            per_account = conn.execute(count.where(f.email == account_key(email), f.at > since)).scalar_one()
            per_address = conn.execute(count.where(f.address == address[:64], f.at > since)).scalar_one()
        return per_account >= FAILURES_PER_ACCOUNT or per_address >= FAILURES_PER_ADDRESS

    def sign_in(self, email: str, password: str, address: str) -> str | None:
        """A new session token when the password is right, else None (and the failure is counted).

        Callers ask ``throttled`` first: a throttled attempt is not even checked.
        """
        key = account_key(email)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(staff_accounts).where(staff_accounts.c.email == key)).first()
        ok = False
        try:
            ok = _hasher.verify(row.password_hash if row else _dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        except (VerificationError, InvalidHashError):
            ok = False
        now = utcnow()
        with write_transaction(self.engine) as conn:
            if not (ok and row):
                conn.execute(staff_sign_in_failures.insert().values(email=key, address=address[:64], at=now))
                # Old failures are of no use to the throttle: keep the table small.
                conn.execute(staff_sign_in_failures.delete().where(staff_sign_in_failures.c.at < now - timedelta(days=1)))
                return None
            if _hasher.check_needs_rehash(row.password_hash):
                conn.execute(staff_accounts.update().where(staff_accounts.c.id == row.id)
                             .values(password_hash=_hasher.hash(password)))
            token = secrets.token_urlsafe(32)
            conn.execute(staff_sessions.insert().values(
                token_hash=_token_hash(token), staff_id=row.id, csrf_token=secrets.token_urlsafe(32),
                created_at=now, seen_at=now,
            ))
            conn.execute(staff_sessions.delete().where(staff_sessions.c.seen_at < now - SESSION_IDLE))
        return token

    def session(self, token: str | None) -> SignedIn | None:
        """The person a session cookie belongs to, if it is current; refreshes its idle timer."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        s = staff_sessions.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(staff_accounts, s.csrf_token, s.seen_at)
                .join(staff_sessions, s.staff_id == staff_accounts.c.id)
                .where(s.token_hash == _token_hash(token))
            ).first()
        if row is None or row.seen_at < now - SESSION_IDLE:
            return None
        if row.seen_at < now - SEEN_EVERY:  # one write a minute keeps the idle timer; not one per request
            with write_transaction(self.engine) as conn:
                conn.execute(staff_sessions.update().where(s.token_hash == _token_hash(token)).values(seen_at=now))
        return SignedIn(_member(row), row.csrf_token)

    def sign_out(self, token: str | None) -> None:
        if token:
            with write_transaction(self.engine) as conn:
                conn.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == _token_hash(token)))
