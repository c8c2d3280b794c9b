"""Web sign-in on a real database (SQLite and PostgreSQL): passwords from provisioning,
sessions stored as hashes, expiry, sign-out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from faxline.auth.context import Role
from faxline.auth.secrets import hash_secret, token_digest
from faxline.auth.web_sessions import SESSION_LIFETIME, sign_in, sign_out, signed_in
from faxline.directory.provision import apply, parse
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import User, WebSession

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
HASH = hash_secret("hashed-pw-1")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def provisioned(engine: Engine, users: list[dict[str, Any]]) -> Any:
    sessions = session_factory(engine)
    spec = parse({"organizations": [{"code": "0003", "name": "Acme"}], "users": users})
    with sessions() as session:
        apply(session, spec)
        session.commit()
    return sessions


def test_passwords_and_hashes_sign_in_others_cannot(engine: Engine) -> None:
    sessions = provisioned(
        engine,
        [
            {"id": "alice", "organization": "0003", "password": "alice-pw-1"},
            {"id": "olga", "organization": "0003", "role": "organization", "passwordHash": HASH},
            {"id": "nopw", "organization": "0003"},
        ],
    )
    with sessions() as session:
        assert sign_in(session, "alice", "wrong-pw", NOW) is None
        assert sign_in(session, "nopw", "", NOW) is None
        assert sign_in(session, "ghost", "alice-pw-1", NOW) is None
        new = sign_in(session, "alice", "alice-pw-1", NOW)
        assert new is not None
        stored = session.scalars(select(WebSession)).one()
        assert stored.token_hash == token_digest(new.token) != new.token
        who = signed_in(session, new.token, NOW)
        assert who is not None and who.principal.uid == "alice"
        assert who.csrf_token == new.csrf_token
        olga = sign_in(session, "olga", "hashed-pw-1", NOW)
        assert olga is not None
        who = signed_in(session, olga.token, NOW)
        assert who is not None and who.principal.role is Role.ORGANIZATION
        assert signed_in(session, new.token, NOW + SESSION_LIFETIME) is None  # expired
        sign_out(session, new.token)
        assert signed_in(session, new.token, NOW) is None
        assert signed_in(session, olga.token, NOW) is not None


def test_provisioning_keeps_a_password_hash_until_the_password_changes(
    engine: Engine,
) -> None:
    users = [{"id": "alice", "organization": "0003", "password": "alice-pw-1"}]
    sessions = provisioned(engine, users)
    with sessions() as session:
        first = session.scalar(select(User.password_hash))
        apply(session, parse({"organizations": [{"code": "0003", "name": "Acme"}], "users": users}))
        assert session.scalar(select(User.password_hash)) == first  # idempotent
        apply(
            session,
            parse(
                {
                    "organizations": [{"code": "0003", "name": "Acme"}],
                    "users": [{"id": "alice", "organization": "0003"}],
                }
            ),
        )
        assert session.scalar(select(User.password_hash)) is None
        assert sign_in(session, "alice", "alice-pw-1", NOW) is None
