"""A full extension number of the sender's own organization must exist; another
organization's numbers are accepted unseen, so that they cannot be probed."""

from __future__ import annotations

from tests.api.conftest import Api


def test_missing_extension_of_own_organization_is_invalid(api: Api) -> None:
    for recipients in (["0003*999"], ["0003*211", "0003*999"], ["+15550001111", " 0003*999 "]):
        r = api.send("alice", "@me/210", recipients=recipients)
        assert r.status_code == 400, (recipients, r.text)
        error = r.json()["error"]
        assert error["code"] == "fx_recipients_invalid"
        assert "0003*999" in error["message"]
    assert api.counts() == (0, 0, 0, 0)
    # The same digits in short form are a phone number, as they always were.
    r = api.send("alice", "@me/210", recipients=["999", "0003*211"])
    assert r.status_code == 200, r.text
    fax = api.client.get(f"/uapi/faxes/@me/210/{r.json()['id']}", headers=api.auth("alice"))
    assert [(d["recipient"], d.get("destination")) for d in fax.json()["deliveries"]] == [
        ("999", None),
        ("0003*211", None),  # shown only when it differs from the recipient
    ]


def test_other_organizations_numbers_cannot_be_probed(api: Api) -> None:
    """`0004*999` (missing) and `0004*210` (existing) get the same answer, as do an
    organization that does not exist at all, from a user and from an organization admin."""
    answers = []
    for user in ("alice", "olga"):
        for number in ("0004*999", "0004*210", "0099*1"):
            r = api.send(user, "alice/210", recipients=[number])
            assert r.status_code == 200, r.text
            fax = api.client.get(
                f"/uapi/faxes/alice/210/{r.json()['id']}", headers=api.auth(user)
            ).json()
            answers.append(
                (
                    r.status_code,
                    sorted(r.json()),
                    [(d["status"], sorted(d)) for d in fax["deliveries"]],
                )
            )
    assert answers[0][0] == 200
    assert all(a == answers[0] for a in answers), answers
    # ... while the own organization's missing number is told apart.
    r = api.send("olga", "alice/210", recipients=["0003*999"])
    assert r.status_code == 400, r.text
