"""Tokens stop working at once: revoked by their client (RFC 7009), or by provisioning
(a new secret, a new owner, a removed app or user)."""

from __future__ import annotations

import base64
import json
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select, update

from faxline.auth.secrets import hash_secret
from faxline.directory.provision import apply, parse
from faxline.store.models import App
from tests.api.conftest import Api


def _works(api: Api, token: str, path: str = "@me/210") -> int:
    r = api.client.get(f"/uapi/faxes/{path}", headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 401:
        assert r.json()["error"]["code"] == "invalid_token"
    return r.status_code


def _revoke(api: Api, token: str, user: str, secret: str | None = None, **extra: str) -> Any:
    data = {"token": token, "client_id": f"{user}-app", "client_secret": secret or f"s3cret-{user}"}
    return api.client.post("/oauth/revoke.php", data={**data, **extra})


def _provision(api: Api, tenants: dict[str, Any], mutate: Any) -> Any:
    spec = json.loads(json.dumps(tenants))
    mutate(spec)
    with api.state.sessions() as s:
        report = apply(s, parse(spec))
        s.commit()
    return report


def test_client_revokes_its_token(api: Api) -> None:
    token = api.token("alice")
    other = api.client.post(
        "/oauth/token.php",
        data={"grant_type": "client_credentials", "client_id": "alice-app",
              "client_secret": "s3cret-alice"},
    ).json()["access_token"]  # fmt: skip
    assert _works(api, token) == 200
    r = _revoke(api, token, "alice", token_type_hint="access_token")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["cache-control"] == "no-store"
    assert _works(api, token) == 401
    assert _works(api, other) == 200  # only the one token
    # Again, an unknown token, a token of a kind we do not issue: 200 all the same.
    for t, hint in [(token, "access_token"), ("x" * 43, "refresh_token"), ("bad token", "")]:
        assert _revoke(api, t, "alice", token_type_hint=hint).status_code == 200


def test_revoke_with_http_basic(api: Api) -> None:
    token = api.token("bob")
    basic = base64.b64encode(b"bob-app:s3cret-bob").decode()
    r = api.client.post(
        "/oauth/revoke.php", data={"token": token}, headers={"Authorization": f"Basic {basic}"}
    )
    assert r.status_code == 200
    assert _works(api, token, "@me/211") == 401


def test_token_of_another_client_is_not_revoked(api: Api) -> None:
    alice = api.token("alice")
    r = _revoke(api, alice, "bob")
    assert r.status_code == 200
    assert _works(api, alice) == 200


def test_bad_client_credentials(api: Api) -> None:
    token = api.token("alice")
    for r in [
        _revoke(api, token, "alice", "wrong-secret"),
        _revoke(api, token, "nobody"),
        api.client.post("/oauth/revoke.php", data={"token": token}),
    ]:
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
    assert _works(api, token) == 200
    r = api.client.post(
        "/oauth/revoke.php", data={"client_id": "alice-app", "client_secret": "s3cret-alice"}
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_new_secret_by_provisioning_revokes_tokens(api: Api, tenants: dict[str, Any]) -> None:
    alice, bob = api.token("alice"), api.token("bob")
    report = _provision(
        api, tenants, lambda f: f["apps"][0].update(clientSecretHash=hash_secret("n3w-s3cret"))
    )
    assert _works(api, bob, "@me/211") == 200
    assert _works(api, alice) == 401
    assert report.revoked_tokens == 1
    r = api.client.post(
        "/oauth/token.php",
        data={"grant_type": "client_credentials", "client_id": "alice-app",
              "client_secret": "s3cret-alice"},
    )  # fmt: skip
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    # A secret in clear, changed: the same.
    api.tokens.clear()
    _provision(
        api,
        tenants,
        lambda f: f["apps"][1].update(clientSecretHash=None, clientSecret="other-bob-1"),
    )
    assert _works(api, bob, "@me/211") == 401


def test_same_file_again_keeps_tokens_even_after_the_hash_was_upgraded(
    api: Api, tenants: dict[str, Any]
) -> None:
    token = api.token("alice")
    # The token endpoint may re-hash a secret with new argon2 parameters; the file still
    # holds the old hash of the same secret, which is no new secret.
    upgraded = PasswordHasher(time_cost=4).hash("s3cret-alice")
    with api.state.sessions() as s:
        s.execute(update(App).where(App.client_id == "alice-app").values(secret_hash=upgraded))
        s.commit()
    report = _provision(api, tenants, lambda f: None)
    assert report.revoked_tokens == 0
    assert _works(api, token) == 200
    with api.state.sessions() as s:
        assert s.scalar(select(App.secret_hash).where(App.client_id == "alice-app")) == upgraded


def test_new_owner_revokes_tokens(api: Api, tenants: dict[str, Any]) -> None:
    token = api.token("alice")
    _provision(api, tenants, lambda f: f["apps"][0].update(owner="bob"))
    assert _works(api, token) == 401


def test_removed_app_and_removed_user_lose_their_tokens(api: Api, tenants: dict[str, Any]) -> None:
    alice, erin, carol = api.token("alice"), api.token("erin"), api.token("carol")

    def remove(f: dict[str, Any]) -> None:
        f["apps"] = [a for a in f["apps"] if a["owner"] not in ("alice", "erin")]
        f["users"] = [u for u in f["users"] if u["id"] != "erin"]
        f["extensions"] = [x for x in f["extensions"] if x["owner"] != "erin"]
        f["remove"] = {"apps": ["alice-app", "erin-app"], "users": ["erin"],
                       "extensions": ["0005*300"]}  # fmt: skip

    report = _provision(api, tenants, remove)
    assert report.revoked_tokens == 2
    assert report.removed["users"] == ["erin"]
    assert _works(api, alice) == 401
    assert _works(api, erin, "@me/300") == 401
    assert _works(api, carol, "@me/210") == 200
