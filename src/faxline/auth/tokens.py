"""OAuth 2.0 client-credentials tokens: issued to apps, stored as hashes, expiring."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from faxline.auth.context import Principal, Role
from faxline.auth.errors import InvalidClient, InvalidToken
from faxline.auth.secrets import hash_secret, needs_rehash, new_token, token_digest, verify_secret
from faxline.store.models import App, Token, User

_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{20,512}")


def issue_token(
    session: Session, client_id: str, client_secret: str, ttl_s: int, now: dt.datetime
) -> str:
    """A new access token for the app, or InvalidClient. Commits."""
    app = session.scalar(select(App).where(App.client_id == client_id))
    if not verify_secret(app.secret_hash if app else None, client_secret) or app is None:
        raise InvalidClient("unknown client or wrong secret")
    if needs_rehash(app.secret_hash):
        app.secret_hash = hash_secret(client_secret)
    token = new_token()
    session.add(
        Token(
            token_hash=token_digest(token),
            app_id=app.id,
            expires_at=now + dt.timedelta(seconds=ttl_s),
        )
    )
    # Expired tokens are of no use to anyone; drop them while we are here.
    session.execute(delete(Token).where(Token.expires_at < now - dt.timedelta(days=1)))
    session.commit()
    return token


def revoke_token(session: Session, client_id: str, client_secret: str, token: str) -> bool:
    """RFC 7009: forget the app's own access token; InvalidClient for bad credentials.

    Whether a token was forgotten is for the caller's logs only: the client is answered
    alike either way, and a token of another client is left alone (and not revealed).
    The row goes, so the next request with the token fails wherever it arrives. Commits.
    """
    app = session.scalar(select(App).where(App.client_id == client_id))
    if not verify_secret(app.secret_hash if app else None, client_secret) or app is None:
        raise InvalidClient("unknown client or wrong secret")
    if not _TOKEN.fullmatch(token):
        return False
    result = session.execute(
        delete(Token).where(Token.token_hash == token_digest(token), Token.app_id == app.id)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))


def bearer_value(header: str | None) -> str | None:
    """`Bearer abc` (or a bare token, as some UAPI clients send in the query) -> `abc`."""
    if header is None:
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip()
    return value if " " not in value else None


def authenticate(session: Session, token: str | None, now: dt.datetime) -> Principal:
    """The principal behind a token, or InvalidToken."""
    if not token:
        raise InvalidToken("an access token is required (Authorization: Bearer <token>)")
    if not _TOKEN.fullmatch(token):
        raise InvalidToken("the access token is malformed")
    row = session.execute(_PRINCIPAL.where(Token.token_hash == token_digest(token))).first()
    if row is None:
        raise InvalidToken("the access token is not valid")
    expires_at, app_id, user_id, uid, role, organization_id = row
    if _aware(expires_at) <= now:
        raise InvalidToken("the access token has expired")
    return Principal(
        user_id=user_id,
        uid=uid,
        role=Role(role),
        organization_id=organization_id,
        app_id=app_id,
    )


# One plain query per request (no ORM entities).
_PRINCIPAL = (
    select(Token.expires_at, App.id, User.id, User.uid, User.role, User.organization_id)
    .join(App, Token.app_id == App.id)
    .join(User, App.owner_id == User.id)
)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
