"""Issue 7 in the app: deep or large request parts, numbers out of range, the OpenAPI
description, 405 with Allow, secrets hashed for a server and checked through a cache."""

from __future__ import annotations

import json
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select, update

from faxline.store.models import App
from tests.api.conftest import Api

TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "alice-app"}


def _request_part(api: Api, text: str) -> Any:
    return api.client.post(
        "/uapi/faxes/@me/0003*210",
        files=[("files", ("fax.txt", b"hello", "text/plain")), ("request", (None, text))],
        headers=api.auth("alice"),
    )


def test_deeply_nested_request_part_is_a_clear_400(api: Api) -> None:
    r = _request_part(api, '{"recipients": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {
        "code": "request_invalid",
        "message": "the request part nests deeper than 16 levels",
    }
    # Brackets inside strings are text, not nesting.
    r = _request_part(api, json.dumps({"recipients": ["7778888"], "note": "[" * 10_000}))
    assert r.status_code == 200, r.text


def test_large_request_part_is_a_clear_400(api: Api) -> None:
    r = _request_part(api, json.dumps({"recipients": ["7778888"], "pad": "x" * 70_000}))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "request_invalid"
    assert "at most 65536" in r.json()["error"]["message"]
    assert api.counts() == (0, 0, 0, 0)


def test_numbers_out_of_range_are_400(api: Api) -> None:
    for query in (
        "startIndex=9223372036854775808",
        "startIndex=2147483648",
        "startIndex=-1",
        "count=0",
        "count=5000",
        "count=99999999999999999999",
    ):
        r = api.client.get(f"/uapi/faxes/@me/0003*210?{query}", headers=api.auth("alice"))
        assert r.status_code == 400, (query, r.text)
        assert r.json()["error"]["code"] == "request_invalid", query
    r = api.client.get("/uapi/faxes/@me/0003*210?startIndex=2147483647", headers=api.auth("alice"))
    assert r.status_code == 200
    assert r.json()["entry"] == []


def test_openapi_documents_create_faxes(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    create = spec["paths"]["/uapi/faxes/{user_id}/{extension}"]["post"]
    body = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["properties"]) == {"files", "request"}
    assert body["properties"]["files"]["items"]["format"] == "binary"
    assert body["properties"]["request"]["properties"]["recipients"]["type"] == "array"
    answers = create["responses"]
    for status in ("200", "204", "400", "401", "403", "404", "413", "429", "500"):
        assert status in answers, status
    assert "422" not in answers
    error_ref = {"$ref": "#/components/schemas/UapiError"}
    for status in ("400", "401", "403", "404", "413", "429", "500"):
        assert answers[status]["content"]["application/json"]["schema"] == error_ref, status
    assert "Retry-After" in answers["429"]["headers"]
    assert answers["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FaxCreated"
    }
    error = spec["components"]["schemas"]["UapiError"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    # No operation documents an answer faxline never gives.
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]


def test_405_names_every_allowed_method(api: Api) -> None:
    r = api.client.put("/uapi/faxes/@me/0003*210", headers=api.auth("alice"))
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = api.client.patch("/uapi/faxes/@me/0003*210/1", headers=api.auth("alice"))
    assert (r.status_code, r.headers["allow"]) == (405, "DELETE, GET")
    r = api.client.get("/oauth/token.php")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")


def test_old_hashes_verify_and_are_rehashed_for_a_server(api: Api) -> None:
    old = PasswordHasher().hash("s3cret-alice")  # argon2-cffi's default: 64 MiB
    assert "m=65536" in old
    with api.state.sessions() as s:
        s.execute(update(App).where(App.client_id == "alice-app").values(secret_hash=old))
        s.commit()
    r = api.client.post("/oauth/token.php", data={**TOKEN_FORM, "client_secret": "s3cret-alice"})
    assert r.status_code == 200, r.text
    with api.state.sessions() as s:
        now = s.scalar(select(App.secret_hash).where(App.client_id == "alice-app"))
    assert now is not None and now.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_verified_secret_is_cached_until_the_app_is_rekeyed(api: Api) -> None:
    cache = api.state.secret_checks.cache
    with api.state.sessions() as s:
        first = s.scalar(select(App.secret_hash).where(App.client_id == "alice-app"))
    assert not cache.knows("alice-app", "s3cret-alice", first, 0.0)
    r = api.client.post("/oauth/token.php", data={**TOKEN_FORM, "client_secret": "s3cret-alice"})
    assert r.status_code == 200
    now = api.state.secret_checks.now()
    assert cache.knows("alice-app", "s3cret-alice", first, now)
    assert not cache.knows("alice-app", "wrong", first, now)
    # Re-keyed: the cached secret is no longer good, at once.
    rekeyed = PasswordHasher().hash("new-secret")
    with api.state.sessions() as s:
        s.execute(update(App).where(App.client_id == "alice-app").values(secret_hash=rekeyed))
        s.commit()
    r = api.client.post("/oauth/token.php", data={**TOKEN_FORM, "client_secret": "s3cret-alice"})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    assert not cache.knows("alice-app", "s3cret-alice", first, now)


def test_wrong_secrets_are_limited_per_client_and_address(make_api: Any) -> None:
    api: Api = make_api(token_failures_per_minute=3)
    wrong = {**TOKEN_FORM, "client_secret": "nope"}
    assert [api.client.post("/oauth/token.php", data=wrong).status_code for _ in range(3)] == [
        401
    ] * 3
    r = api.client.post("/oauth/token.php", data=wrong)
    assert r.status_code == 429
    assert r.json() == {
        "error": {"code": "too_many_requests", "message": "too many wrong secrets; try again later"}
    }
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # The revoke endpoint checks secrets through the same limiter (same address).
    r = api.client.post(
        "/oauth/revoke.php", data={"client_id": "bob-app", "client_secret": "x", "token": "t" * 30}
    )
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "too_many_requests"
