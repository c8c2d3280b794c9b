"""An API under test: real app, real database, real converter pool, three tenants."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from faxline.api.app import create_app
from faxline.api.state import AppState
from faxline.auth.secrets import hash_secret
from faxline.config import Settings
from faxline.directory.provision import apply, parse
from faxline.documents import ConversionLimits
from faxline.documents.pool import ConverterPool
from faxline.store.blobstores import blob_store_for
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import Blob, Delivery, Fax, FaxFile
from faxline.testing.clock import ManualClock

# Three organizations; in each a user, a colleague and an organization admin; one admin.
TENANTS: dict[str, Any] = {
    "organizations": [
        {"code": "0003", "name": "Acme"},
        {"code": "0004", "name": "Beta"},
        {"code": "0005", "name": "Gamma"},
    ],
    "users": [
        {"id": "alice", "organization": "0003", "role": "user"},
        {"id": "bob", "organization": "0003", "role": "user"},
        {"id": "olga", "organization": "0003", "role": "organization"},
        {"id": "carol", "organization": "0004", "role": "user"},
        {"id": "dave", "organization": "0004", "role": "organization"},
        {"id": "erin", "organization": "0005", "role": "user"},
        {"id": "root", "role": "admin"},
    ],
    "extensions": [
        {
            "number": "0003*210",
            "owner": "alice",
            "fax": True,
            "callerId": "+15550100210",
            "header": "Acme Ltd",
        },
        {"number": "0003*211", "owner": "bob", "fax": True},
        {"number": "0003*212", "owner": "alice", "fax": False},
        {"number": "0004*210", "owner": "carol", "fax": True},
        {"number": "0005*300", "owner": "erin", "fax": True},
    ],
    "apps": [
        # Hashed once here: argon2 is slow on purpose, and every test provisions anew.
        {"clientId": f"{u}-app", "clientSecretHash": hash_secret(f"s3cret-{u}"), "owner": u}
        for u in ("alice", "bob", "olga", "carol", "dave", "erin", "root")
    ],
}


@pytest.fixture
def tenants() -> dict[str, Any]:
    """A copy of the file every API here is provisioned with, with the same secret hashes
    (this module may be imported twice, under two names, each hashing anew)."""
    copy: dict[str, Any] = json.loads(json.dumps(TENANTS))
    return copy


@pytest.fixture(scope="session")
def converter() -> Iterator[ConverterPool]:
    pool = ConverterPool(workers=2, limits=ConversionLimits(max_pages=20))
    yield pool
    pool.close()


@dataclass
class Api:
    client: TestClient
    state: AppState
    clock: ManualClock
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = self.client.post(
                "/oauth/token.php",
                data={
                    "grant_type": "client_credentials",
                    "client_id": f"{user}-app",
                    "client_secret": f"s3cret-{user}",
                },
            )
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def send(
        self,
        user: str,
        path: str,
        *,
        recipients: Any = ("7778888",),
        files: list[tuple[str | None, bytes]] | None = None,
    ) -> Any:
        parts: list[tuple[str, Any]] = [
            ("files", (name, data, "application/octet-stream"))
            for name, data in (files if files is not None else [("fax.txt", b"This is my fax")])
        ]
        parts.append(("request", (None, json.dumps({"recipients": list(recipients)}))))
        return self.client.post(f"/uapi/faxes/{path}", files=parts, headers=self.auth(user))

    def counts(self) -> tuple[int, int, int, int]:
        """(faxes, documents, deliveries, files on disk): proof that nothing half-stored."""
        with self.state.sessions() as s:
            faxes = s.scalar(select(func.count()).select_from(Fax)) or 0
            docs = s.scalar(select(func.count()).select_from(FaxFile)) or 0
            deliveries = s.scalar(select(func.count()).select_from(Delivery)) or 0
            # Blobs in the database where they live there (PostgreSQL), plus spooled files.
            blobs = s.scalar(select(func.count()).select_from(Blob)) or 0
        on_disk = len(list(self.state.files.spool.iterdir()))
        return faxes, docs, deliveries, on_disk + blobs


@pytest.fixture
def make_api(
    database_url: str, tmp_path: Path, converter: ConverterPool
) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []
    engines = []
    pools: list[ConverterPool] = []

    def make(**settings: Any) -> Api:
        cfg = Settings(data_dir=tmp_path / "data", database_url=database_url, **settings)
        engine = make_engine(cfg.sqlalchemy_url)
        engines.append(engine)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as s:
            apply(s, parse(TENANTS))
            s.commit()
        clock = ManualClock()
        pool = converter
        if "max_pages" in settings or "max_pixels" in settings:
            pool = ConverterPool(
                workers=1,
                limits=ConversionLimits(max_pages=cfg.max_pages, max_pixels=cfg.max_pixels),
            )
            pools.append(pool)
        state = AppState(
            settings=cfg,
            sessions=sessions,
            files=blob_store_for(engine, cfg.data_dir),
            converter=pool,
            clock=clock,
        )
        client = TestClient(create_app(state=state), raise_server_exceptions=False)
        api = Api(client=client, state=state, clock=clock)
        made.append(api)
        return api

    yield make
    for api in made:
        api.client.close()
    for engine in engines:
        engine.dispose()
    for pool in pools:
        pool.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
