"""Three tenants: no app reaches another organization's extensions or faxes on any route."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


@pytest.fixture
def faxes(api: Api) -> dict[str, int]:
    """One fax in each organization, sent by its user."""
    made = {}
    for user, path in [
        ("alice", "@me/0003*210"),
        ("carol", "@me/0004*210"),
        ("erin", "@me/0005*300"),
    ]:
        r = api.send(user, path)
        assert r.status_code == 200, r.text
        made[path.split("/")[1]] = r.json()["id"]
    return made


def routes(ext: str, fax_id: int, owner: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/uapi/faxes/{owner}/{ext}"),
        ("GET", f"/uapi/faxes/{owner}/{ext}/{fax_id}"),
        ("GET", f"/uapi/faxes/{owner}/{ext}/{fax_id}/document"),
        ("DELETE", f"/uapi/faxes/{owner}/{ext}/{fax_id}"),
        ("GET", f"/uapi/faxes/@owner/{ext}"),
        ("GET", f"/uapi/faxes/@owner/{ext}/{fax_id}"),
    ]


def test_other_organizations_are_not_found(api: Api, faxes: dict[str, int]) -> None:
    for user in ("alice", "bob", "olga"):
        for ext, owner in [("0004*210", "carol"), ("0005*300", "erin")]:
            for method, url in routes(ext, faxes[ext], owner):
                r = api.client.request(method, url, headers=api.auth(user))
                assert r.status_code == 404, (user, method, url, r.text)
                assert r.json()["error"]["code"] == "not_found"
            r = api.send(user, f"{owner}/{ext}")
            assert r.status_code == 404, (user, ext)
            r = api.send(user, f"@owner/{ext}")
            assert r.status_code == 404, (user, ext)
    # A user can't name another organization's fax through its own extension either.
    r = api.client.get(f"/uapi/faxes/@me/0003*210/{faxes['0004*210']}", headers=api.auth("alice"))
    assert r.status_code == 404
    # The same short number means each caller's own organization.
    r = api.client.get(f"/uapi/faxes/@me/210/{faxes['0004*210']}", headers=api.auth("carol"))
    assert r.status_code == 200
    r = api.client.get(f"/uapi/faxes/@me/210/{faxes['0004*210']}", headers=api.auth("alice"))
    assert r.status_code == 404
    assert api.counts()[0] == 3


def test_user_app_on_colleague_is_forbidden(api: Api, faxes: dict[str, int]) -> None:
    fax = faxes["0003*210"]
    for method, url in routes("0003*210", fax, "alice"):
        r = api.client.request(method, url, headers=api.auth("bob"))
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    r = api.send("bob", "@me/0003*210")
    assert r.status_code == 403
    r = api.send("bob", "alice/210")
    assert r.status_code == 403


def test_organization_app_acts_for_its_users(api: Api, faxes: dict[str, int]) -> None:
    fax = faxes["0003*210"]
    r = api.client.get(f"/uapi/faxes/alice/0003*210/{fax}", headers=api.auth("olga"))
    assert r.status_code == 200
    assert api.send("olga", "alice/0003*210").status_code == 200
    assert api.send("olga", "@owner/0003*211").status_code == 200
    assert api.send("olga", "bob/211").status_code == 200
    # The organization's own user must still own the extension it sends from.
    r = api.send("olga", "@me/0003*210")
    assert r.status_code == 403
    assert api.send("dave", "carol/210").status_code == 200
    assert api.send("dave", "alice/0003*210").status_code == 404


def test_admin_reaches_everyone(api: Api, faxes: dict[str, int]) -> None:
    for ext, owner in [("0003*210", "alice"), ("0004*210", "carol"), ("0005*300", "erin")]:
        r = api.client.get(f"/uapi/faxes/@owner/{ext}/{faxes[ext]}", headers=api.auth("root"))
        assert r.status_code == 200
        assert api.send("root", f"{owner}/{ext}").status_code == 200
    # An admin has no organization, so a short number means nothing.
    assert api.send("root", "@owner/210").status_code == 404


def test_unknown_user_and_extension(api: Api) -> None:
    assert api.send("alice", "nobody/210").status_code == 404
    assert api.send("alice", "@me/0003*999").status_code == 404
    assert api.send("alice", "@me/0009*210").status_code == 404
    r = api.client.get("/uapi/faxes/@me/210/999999", headers=api.auth("alice"))
    assert r.status_code == 404
    r = api.client.get("/uapi/faxes/@me/210/abc", headers=api.auth("alice"))
    assert r.status_code == 404
