"""OAuth client credentials: tokens issued, hashed at rest, expiring, read from two places."""

from __future__ import annotations

import re

from sqlalchemy import select

from faxline.store.models import App, Token
from tests.api.conftest import Api


def test_token_vendor_style(api: Api) -> None:
    r = api.client.post(
        "/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": "alice-app",
            "client_secret": "s3cret-alice",
            "type": "unifiedapi",
            "redirect_uri": "https://example.invalid/cb",
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert re.fullmatch(r"[A-Za-z0-9_.-]{20,}", body["access_token"])
    with api.state.sessions() as s:
        stored = s.scalars(select(Token.token_hash)).all()
        secret = s.scalar(select(App.secret_hash).where(App.client_id == "alice-app"))
    assert body["access_token"] not in stored
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{64}", stored[0])
    assert secret is not None and secret.startswith("$argon2")


def test_bad_client(api: Api) -> None:
    for cid, secret in [("alice-app", "wrong"), ("nobody", "s3cret-alice")]:
        r = api.client.post(
            "/oauth/token.php",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
    r = api.client.post("/oauth/token.php", data={"grant_type": "password"})
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")


def test_token_in_query_parameter(api: Api) -> None:
    token = api.token("alice")
    r = api.client.get("/uapi/faxes/@me/210", params={"accessRequestToken": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    r = api.client.get("/uapi/faxes/@me/210", params={"accessRequestToken": token})
    assert r.status_code == 200


def test_missing_unknown_and_expired_tokens(api: Api) -> None:
    r = api.client.get("/uapi/faxes/@me/210")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")
    r = api.client.get("/uapi/faxes/@me/210", headers={"Authorization": "Bearer " + "x" * 43})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")
    r = api.client.get("/uapi/faxes/@me/210", headers={"Authorization": "Bearer a b"})
    assert r.status_code == 401
    headers = api.auth("alice")
    api.clock.advance(3599)
    assert api.client.get("/uapi/faxes/@me/210", headers=headers).status_code == 200
    api.clock.advance(2)
    r = api.client.get("/uapi/faxes/@me/210", headers=headers)
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]
    r = api.send("alice", "@me/210")  # the cached token is expired too
    assert r.status_code == 401


def test_token_ttl_from_settings(make_api: object) -> None:
    api = make_api(token_ttl_s=120)  # type: ignore[operator]
    r = api.client.post(
        "/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": "bob-app",
            "client_secret": "s3cret-bob",
        },
    )
    assert r.json()["expires_in"] == 120
