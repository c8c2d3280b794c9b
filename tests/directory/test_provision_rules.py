"""Provisioning judges the directory a file would leave, removes with its dependents only,
and changes nothing when it refuses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from faxline.auth.context import Role
from faxline.auth.secrets import hash_secret
from faxline.directory.provision import ProvisionError, apply, parse, planned, stored
from faxline.directory.tenancy import Directory, violations
from faxline.store import faxes as fax_store
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.files import FileStore
from faxline.store.models import Base, Delivery, Extension, Fax
from faxline.testing.clock import ManualClock

BASE: dict[str, Any] = {
    "organizations": [{"code": "0003", "name": "Acme"}, {"code": "0004", "name": "Beta"}],
    "users": [
        {"id": "alice", "organization": "0003"},
        {"id": "olga", "organization": "0003", "role": "organization"},
        {"id": "carol", "organization": "0004"},
        {"id": "root", "role": "admin"},
    ],
    "extensions": [
        {"number": "0003*210", "owner": "alice", "fax": True, "dids": ["+15550200100"]},
        {"number": "0004*210", "owner": "carol", "fax": True},
    ],
    "apps": [
        # Hashed once: argon2 is slow on purpose, and the property tests provision often.
        {
            "clientId": "alice-app",
            "clientSecretHash": hash_secret("s3cret-alice"),
            "owner": "alice",
        },
        {
            "clientId": "carol-app",
            "clientSecretHash": hash_secret("s3cret-carol"),
            "owner": "carol",
        },
    ],
}


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate(engine)
    made = session_factory(engine)
    with made() as s:
        apply(s, parse(BASE))
        s.commit()
    yield made
    engine.dispose()


def _shape(sessions: sessionmaker[Session]) -> Any:
    with sessions() as s:
        d = stored(s)
    return (d.organizations, d.users, d.extensions, d.apps)


def _refused(sessions: sessionmaker[Session], file: dict[str, Any], message: str) -> None:
    before = _shape(sessions)
    with sessions() as s, pytest.raises(ProvisionError, match=re.escape(message)):
        apply(s, parse(file))
        s.commit()
    assert _shape(sessions) == before


def _applied(sessions: sessionmaker[Session], file: dict[str, Any]) -> Any:
    with sessions() as s:
        report = apply(s, parse(file))
        s.commit()
    return report


@pytest.mark.parametrize(
    ("file", "message"),
    [
        # alice moves to Beta but still owns 0003*210 (stored, not in this file)
        ({"users": [{"id": "alice", "organization": "0004"}]},
         "users[0] ('alice'): 'alice' would be in organization 0004 but owns extension "
         "'0003*210' of organization 0003"),
        # ... or becomes an admin, who belongs to no organization
        ({"users": [{"id": "alice", "role": "admin"}]},
         "users[0] ('alice'): 'alice' would be in no organization (an admin)"),
        ({"users": [{"id": "olga", "role": "admin", "organization": "0003"}]},
         "users[0] ('olga'): an admin belongs to no organization"),
        ({"extensions": [{"number": "0004*211", "owner": "alice"}]},
         "extensions[0] ('0004*211'): owner 'alice' is not in organization 0004"),
        ({"extensions": [{"number": "0004*211", "owner": "carol", "dids": ["+15550200100"]}]},
         "extensions[0] ('0004*211'): DID '+15550200100' already belongs to extension "
         "'0003*210'"),
        ({"extensions": [{"number": "0004*211", "owner": "carol",
                          "dids": ["+15550200101", "+15550200101"]}]},
         "DID '+15550200101' is listed twice"),
        ({"remove": {"users": ["carol"]}},
         "remove.users[0] ('carol'): 'carol' still owns extension '0004*210'"),
        ({"remove": {"users": ["carol"], "extensions": ["0004*210"]}},
         "remove.users[0] ('carol'): 'carol' still owns app 'carol-app'"),
        ({"remove": {"organizations": ["0004"]}},
         "remove.organizations[0] ('0004'): user 'carol' is still in it"),
        ({"users": [{"id": "carol", "organization": "0004"}], "remove": {"users": ["carol"]}},
         "remove.users[0] ('carol'): also listed in users"),
        ({"remove": {"faxesOf": ["0004*210"]}},
         "remove.faxesOf[0] ('0004*210'): faxes are deleted only with their extension"),
        ({"remove": {"users": ["x", "x"]}}, "remove.users[1] ('x'): listed twice"),
        ({"remove": {"extensions": ["210"]}}, "remove.extensions"),
    ],
)  # fmt: skip
def test_states_that_break_tenancy_are_refused(
    sessions: sessionmaker[Session], file: dict[str, Any], message: str
) -> None:
    try:
        spec = parse(file)
    except ProvisionError as e:  # a shape error (checked before anything is read)
        assert message in str(e)
        return
    before = _shape(sessions)
    with sessions() as s, pytest.raises(ProvisionError, match=re.escape(message)):
        apply(s, spec)
    assert _shape(sessions) == before


def test_moving_a_user_with_their_extensions_and_apps(sessions: sessionmaker[Session]) -> None:
    moved = {
        "users": [{"id": "alice", "organization": "0004"}],
        "extensions": [{"number": "0004*220", "owner": "alice", "dids": ["+15550200100"]}],
        "remove": {"extensions": ["0003*210"]},
    }
    report = _applied(sessions, moved)
    assert report.removed["extensions"] == ["0003*210"]
    with sessions() as s:
        d = stored(s)
    assert d.users["alice"].organization == "0004"
    assert set(d.extensions) == {"0004*210", "0004*220"}


def test_removing_a_user_with_everything_they_own(sessions: sessionmaker[Session]) -> None:
    gone = {"remove": {"users": ["carol"], "extensions": ["0004*210"], "apps": ["carol-app"],
                       "organizations": ["0004"]}}  # fmt: skip
    report = _applied(sessions, gone)
    assert report.lines() == [
        "removed 1 apps (carol-app), 1 extensions (0004*210), 1 users (carol), "
        "1 organizations (0004)"
    ]
    with sessions() as s:
        d = stored(s)
    assert "carol" not in d.users and "0004" not in d.organizations
    # Removing what is gone is no error: the file stays idempotent.
    assert _applied(sessions, gone).lines() == []


def _fax(sessions: sessionmaker[Session], tmp_path: Path, number: str, status: str) -> str:
    files = FileStore(tmp_path / "faxes")
    with sessions() as s:
        ext = s.scalar(select(Extension).where(Extension.number == number))
        assert ext is not None
        new = fax_store.create_outgoing(
            s, files, extension_id=ext.id, user_id=ext.owner_id,
            recipients=[("7778888", "7778888")], documents=[], tiff=b"II*\x00",
            pages=1, resolution="fine", now=ManualClock()(),
        )  # fmt: skip
    with sessions() as s:
        fax = s.get(Fax, new.id)
        assert fax is not None
        for d in fax.deliveries:
            d.status = status
        s.commit()
        return fax.document


def test_an_extension_with_faxes_goes_only_with_them(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    document = _fax(sessions, tmp_path, "0004*210", "queued")
    remove: dict[str, Any] = {"extensions": ["0004*210"]}
    _refused(sessions, {"remove": remove},
             "remove.extensions[0] ('0004*210'): the extension has 1 faxes")  # fmt: skip
    remove["faxesOf"] = ["0004*210"]
    busy = "remove.faxesOf[0] ('0004*210'): 1 deliveries of its faxes are not finished"
    _refused(sessions, {"remove": remove}, busy)
    with sessions() as s:
        delivery = s.scalar(select(Delivery))
        assert delivery is not None
        delivery.status = "cancelled"
        s.commit()
    report = _applied(sessions, {"remove": remove})
    assert report.removed_faxes == 1 and report.documents == [document]
    assert "1 faxes" in report.lines()[0]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Fax)) == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


def test_cli_says_what_was_removed_and_deletes_fax_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "faxline.cli", "provision", "--data-dir", str(data)]
    first = tmp_path / "first.json"
    first.write_text(json.dumps(BASE))
    assert subprocess.run([*cmd, str(first)], capture_output=True).returncode == 0
    engine = make_engine(f"sqlite:///{data / 'faxline.sqlite3'}")
    sessions = session_factory(engine)
    document = _fax(sessions, data, "0004*210", "delivered")
    engine.dispose()
    assert (data / "faxes" / document).exists()
    second = tmp_path / "second.json"
    gone = {"remove": {"users": ["carol"], "extensions": ["0004*210"], "apps": ["carol-app"],
                       "faxesOf": ["0004*210"]}}  # fmt: skip
    second.write_text(json.dumps(gone))
    r = subprocess.run([*cmd, str(second)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "removed 1 apps (carol-app), 1 extensions (0004*210), 1 users (carol), 1 faxes" in (
        r.stdout
    )
    assert not (data / "faxes" / document).exists()


# The validator, against a plain statement of the rules, on random directories.
_ORGS = ["0003", "0004"]
_UIDS = ["u1", "u2", "u3"]


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    from faxline.directory.tenancy import AppEntry, ExtensionEntry, OrgEntry, UserEntry

    d = Directory()
    for code in draw(st.sets(st.sampled_from(_ORGS))):
        d.organizations[code] = OrgEntry(code, draw(st.sampled_from([None, f"o[{code}]"])))
    for uid in draw(st.sets(st.sampled_from(_UIDS))):
        d.users[uid] = UserEntry(
            uid, draw(st.sampled_from([None, *_ORGS])), draw(st.sampled_from(list(Role))),
            draw(st.sampled_from([None, f"u[{uid}]"])),
        )  # fmt: skip
    for number in draw(st.sets(st.sampled_from(["0003*1", "0003*2", "0004*1"]))):
        d.extensions[number] = ExtensionEntry(
            number, draw(st.sampled_from(_UIDS)),
            tuple(draw(st.lists(st.sampled_from(["+1555", "+1556"]), max_size=2))),
            draw(st.sampled_from([None, f"x[{number}]"])),
        )  # fmt: skip
    for client in draw(st.sets(st.sampled_from(["a1", "a2"]))):
        d.apps[client] = AppEntry(client, draw(st.sampled_from(_UIDS)))
    for uid in draw(st.sets(st.sampled_from(_UIDS))):
        if uid not in d.users:
            d.removed[("users", uid)] = f"remove.users ({uid!r})"
    return d


def _holds(d: Directory) -> bool:
    for u in d.users.values():
        if (u.role is Role.ADMIN) != (u.organization is None):
            return False
        if u.organization is not None and u.organization not in d.organizations:
            return False
    dids: list[str] = []
    for x in d.extensions.values():
        owner = d.users.get(x.owner)
        if owner is None or owner.organization != x.organization:
            return False
        if x.organization not in d.organizations:
            return False
        dids.extend(x.dids)
    if len(dids) != len(set(dids)):
        return False
    return all(a.owner in d.users for a in d.apps.values())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(directories())
def test_validator_agrees_with_the_rules(d: Directory) -> None:
    problems = violations(d)
    assert (problems == []) == _holds(d), problems
    sources = {e.source for e in [*d.users.values(), *d.extensions.values()] if e.source}
    for p in problems:  # each names an entry: of the file, a removal, or a stored one
        assert p.startswith((*sources, "remove.", "user ", "extension ", "app ")), p


def _memory_sessions() -> sessionmaker[Session]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    event.listen(engine, "connect", lambda c, _: c.execute("PRAGMA foreign_keys=ON"))
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


_files = st.fixed_dictionaries(
    {
        "users": st.lists(
            st.fixed_dictionaries({
                "id": st.sampled_from(["alice", "olga", "carol", "root", "zed"]),
                "organization": st.sampled_from([None, "0003", "0004", "0005"]),
                "role": st.sampled_from(["user", "organization", "admin"]),
            }), max_size=2, unique_by=lambda u: u["id"]),
        "extensions": st.lists(
            st.fixed_dictionaries({
                "number": st.sampled_from(["0003*210", "0003*211", "0004*210", "0004*212"]),
                "owner": st.sampled_from(["alice", "olga", "carol", "root"]),
                "dids": st.lists(st.sampled_from(["+15550200100", "+15550200101"]), max_size=1),
            }), max_size=2, unique_by=lambda x: x["number"]),
        "remove": st.fixed_dictionaries({
            "users": st.lists(st.sampled_from(["alice", "carol", "zed"]), max_size=1),
            "extensions": st.lists(st.sampled_from(["0003*210", "0004*210"]), max_size=1),
            "apps": st.lists(st.sampled_from(["alice-app", "carol-app"]), max_size=1),
            "organizations": st.lists(st.sampled_from(["0004"]), max_size=1),
        }),
    }
)  # fmt: skip


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_files, min_size=1, max_size=3))
def test_applied_files_leave_a_consistent_directory_or_nothing(files: list[Any]) -> None:
    sessions = _memory_sessions()
    with sessions() as s:
        apply(s, parse(BASE))
        s.commit()
    for file in files:
        with sessions() as s:
            before = stored(s)
        with sessions() as s:
            try:
                spec = parse(file)
                apply(s, spec)
                s.commit()
            except ProvisionError:
                s.rollback()
                with sessions() as check:
                    after = stored(check)
                assert (after.users, after.extensions, after.apps) == (
                    before.users, before.extensions, before.apps)  # fmt: skip
                continue
        with sessions() as s:
            after = stored(s)
        assert violations(after) == [] and _holds(after)
        assert planned(before, spec).users.keys() == after.users.keys()
