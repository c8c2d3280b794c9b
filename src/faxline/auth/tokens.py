"""OAuth 2.0 client-credentials tokens: issued to apps, stored as hashes, expiring."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from faxline.auth.context import Principal, Role
from faxline.auth.errors import InvalidClient, InvalidToken
from faxline.auth.secrets import hash_secret, needs_rehash, new_token, token_digest, verify_secret
from faxline.store.models import App, Token, User

_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{20,512}")


@dataclass(frozen=True)
class Client:
    """An app as its secret is checked: its id in the database and its secret's hash."""

    app_id: int
    secret_hash: str


def find_client(session: Session, client_id: str) -> Client | None:
    row = session.execute(select(App.id, App.secret_hash).where(App.client_id == client_id)).first()
    return None if row is None else Client(app_id=row[0], secret_hash=row[1])


def check_secret(client: Client | None, client_secret: str) -> Client:
    """The client if the secret is its own, else InvalidClient (slow: an argon2 hash, also
    for an unknown client, so that timing does not tell which)."""
    if not verify_secret(client.secret_hash if client else None, client_secret) or client is None:
        raise InvalidClient("unknown client or wrong secret")
    return client


def rehash_if_needed(session: Session, client: Client, client_secret: str) -> None:
    """Re-hash a secret whose hash has older parameters (slow). Commits."""
    if needs_rehash(client.secret_hash):
        session.execute(
            update(App)
            .where(App.id == client.app_id, App.secret_hash == client.secret_hash)
            .values(secret_hash=hash_secret(client_secret))
        )
        session.commit()


def issue_token(session: Session, client: Client, ttl_s: int, now: dt.datetime) -> str:
    """A new access token for a client whose secret was checked. Commits."""
    token = new_token()
    session.add(
        Token(
            token_hash=token_digest(token),
            app_id=client.app_id,
            expires_at=now + dt.timedelta(seconds=ttl_s),
        )
    )
    # Expired tokens are of no use to anyone; drop them while we are here.
    session.execute(delete(Token).where(Token.expires_at < now - dt.timedelta(days=1)))
    session.commit()
    return token


def revoke_token(session: Session, client: Client, token: str) -> bool:
    """RFC 7009: forget the client's own access token (its secret was checked).

    Whether a token was forgotten is for the caller's logs only: the client is answered
    alike either way, and a token of another client is left alone (and not revealed).
    The row goes, so the next request with the token fails wherever it arrives. Commits.
    """
    if not _TOKEN.fullmatch(token):
        return False
    result = session.execute(
        delete(Token).where(Token.token_hash == token_digest(token), Token.app_id == client.app_id)
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
