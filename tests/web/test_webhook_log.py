"""The webhook log page: an organization admin sees the attempts of their organization's
apps (and no other's), the global admin every app's, anyone else the 404 of a missing
page; newest first, 50 a page. The attempts are rows as the outbox sender writes them."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from faxline.api.app import create_app
from faxline.api.state import AppState
from faxline.config import Settings
from faxline.directory.provision import apply, parse
from faxline.documents import ConversionLimits
from faxline.documents.pool import ConverterPool
from faxline.store.blobstores import blob_store_for
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import App, OutboxAttempt, OutboxMessage, WebhookEndpoint
from faxline.testing.clock import ManualClock
from faxline.web.app import install

SECRET = "whsec_" + base64.b64encode(bytes(32)).decode()
USERS = {
    "alice": ("0003", "user"),
    "olga": ("0003", "organization"),
    "carol": ("0004", "user"),
    "dave": ("0004", "organization"),
    "root": (None, "admin"),
}
TENANT = {
    "organizations": [{"code": "0003", "name": "Acme"}, {"code": "0004", "name": "Beta"}],
    "users": [
        {"id": u, "role": role, "password": f"password-{u}", **({"organization": o} if o else {})}
        for u, (o, role) in USERS.items()
    ],
    "extensions": [
        {"number": "0003*210", "owner": "alice", "fax": True},
        {"number": "0004*210", "owner": "carol", "fax": True},
    ],
    "apps": [
        {
            "clientId": f"{u}-app",
            "clientSecret": f"s3cret-{u}",
            "owner": u,
            "webhooks": [{"url": f"https://hooks.example/{u}", "secret": SECRET}],
        }
        for u in ("alice", "carol", "root")
    ],
}
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def web(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    cfg = Settings(data_dir=tmp_path / "data", database_url=database_url)
    cfg.data_dir.mkdir(parents=True)
    engine = make_engine(cfg.sqlalchemy_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        apply(s, parse(TENANT))
        s.commit()
        endpoints = {e.app.client_id: e.id for e in s.query(WebhookEndpoint).join(App).all()}
        # Alice's app: 60 attempts (a failed one every third); Carol's 2; root's own 1.
        n = 0
        for app, attempts in (("alice-app", 60), ("carol-app", 2), ("root-app", 1)):
            for k in range(attempts):
                n += 1
                message = OutboxMessage(
                    channel="webhook",
                    endpoint_id=endpoints[app],
                    fax_id=n,
                    event_type="fax.created",
                    message_id=f"msg_{app}_{k}",
                    payload="{}",
                    status="failed" if k % 3 == 0 else "delivered",
                    attempts=1,
                    created_at=T0,
                )
                s.add(message)
                s.flush()
                at = T0 + dt.timedelta(minutes=n)
                s.add(
                    OutboxAttempt(
                        message_id=message.id,
                        started_at=at,
                        ended_at=at,
                        ok=k % 3 != 0,
                        status_code=500 if k % 3 == 0 else 204,
                        error=None,
                    )
                )
        s.commit()
    pool = ConverterPool(workers=1, limits=ConversionLimits(max_pages=5))
    state = AppState(
        settings=cfg,
        sessions=sessions,
        files=blob_store_for(engine, cfg.data_dir),
        converter=pool,
        clock=ManualClock(T0 + dt.timedelta(days=1)),
    )
    app = create_app(state=state)
    install(app)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    pool.close()
    engine.dispose()


def sign_in(client: TestClient, who: str) -> None:
    client.cookies.clear()
    r = client.post("/login", data={"username": who, "password": f"password-{who}"})
    assert r.status_code == 303, r.text


def apps_shown(html: str) -> list[str]:
    return re.findall(r'<td data-label="App">([^<]*)</td>', html)


def test_admins_see_their_organizations_webhook_log(web: TestClient) -> None:
    sign_in(web, "olga")
    r = web.get("/faxes?box=out")
    assert '<a href="/webhooks">Webhook log</a>' in r.text
    r = web.get("/webhooks")
    assert r.status_code == 200
    assert apps_shown(r.text) == ["alice-app"] * 50  # 50 a page, Acme's app only
    assert "60 webhook attempts" in r.text and "Page 1 of 2" in r.text
    assert "https://hooks.example/alice" in r.text and "hooks.example/carol" not in r.text
    assert "(HTTP 500)" in r.text and "(HTTP 204)" in r.text and "given up" in r.text
    times = re.findall(r'<td data-label="Time">([^<]*)</td>', r.text)
    assert times == sorted(times, reverse=True)  # newest first
    r = web.get("/webhooks?page=2")
    assert apps_shown(r.text) == ["alice-app"] * 10 and "Page 2 of 2" in r.text

    sign_in(web, "dave")
    assert apps_shown(web.get("/webhooks").text) == ["carol-app"] * 2

    sign_in(web, "root")
    r = web.get("/webhooks")
    assert "63 webhook attempts" in r.text
    assert set(apps_shown(r.text)) == {"alice-app", "carol-app", "root-app"}


def test_others_get_404_and_no_link(web: TestClient) -> None:
    for who in ("alice", "carol"):
        sign_in(web, who)
        assert "/webhooks" not in web.get("/faxes?box=out").text
        r = web.get("/webhooks")
        assert r.status_code == 404 and "Not found" in r.text
        assert "hooks.example" not in r.text
    web.cookies.clear()
    assert web.get("/webhooks").headers["location"] == "/login"
