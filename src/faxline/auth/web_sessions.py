"""Signing people in to the web fax center: password check, sessions in the database.

The cookie carries an opaque token; the database keeps its sha256 (like access tokens), so
a stolen database does not sign anyone in, and any node sharing the database serves the
session. Each session has its own CSRF token for the forms it posts.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from faxline.auth.context import Principal, Role
from faxline.auth.secrets import new_token, token_digest, verify_secret
from faxline.store.models import User, WebSession

SESSION_LIFETIME = dt.timedelta(hours=12)


@dataclass(frozen=True)
class SignedIn:
    """A valid session: who it is, and the CSRF token its forms must carry."""

    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie; not stored
    csrf_token: str


def principal_of(user_id: int, uid: str, role: str, organization_id: int | None) -> Principal:
    """A person in the browser acts in the context of their own role, like an app they own;
    app_id 0 says that no app is involved."""
    return Principal(
        user_id=user_id, uid=uid, role=Role(role), organization_id=organization_id, app_id=0
    )


def sign_in(session: Session, username: str, password: str, now: dt.datetime) -> NewSession | None:
    """A new session when the pair is right, else None (without telling which part was
    wrong, and in the same time). Commits."""
    row = session.execute(select(User.id, User.password_hash).where(User.uid == username)).first()
    user_id, password_hash = (row[0], row[1]) if row is not None else (None, None)
    if not verify_secret(password_hash, password) or user_id is None:
        return None
    token, csrf = new_token(), secrets.token_urlsafe(32)
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.commit()
    return NewSession(token=token, csrf_token=csrf)


# Built once: every page asks it, and building a statement anew costs several times what
# running this one does (SQLAlchemy computes its cache key each time).
_SESSION = (
    select(
        WebSession.expires_at,
        WebSession.csrf_token,
        User.id,
        User.uid,
        User.role,
        User.organization_id,
    )
    .join(User, WebSession.user_id == User.id)
    .where(WebSession.token_hash == bindparam("digest"))
)


def signed_in(session: Session, token: str | None, now: dt.datetime) -> SignedIn | None:
    """The session of this cookie value, if it is valid now."""
    if not token:
        return None
    row = session.execute(_SESSION, {"digest": token_digest(token)}).first()
    if row is None or row[0] <= now:
        return None
    return SignedIn(principal=principal_of(*row[2:]), csrf_token=row[1])


def sign_out(session: Session, token: str | None) -> None:
    """End the session on the server. Commits."""
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == token_digest(token)))
        session.commit()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
