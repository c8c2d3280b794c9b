"""`faxline provision`: idempotent, precise errors, nothing half-applied."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from faxline.directory.provision import ProvisionError, apply, parse
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import App, Extension, Organization, User

EXAMPLE: dict[str, Any] = {
    "organizations": [{"code": "0003", "name": "Acme"}],
    "users": [
        {"id": "alice", "organization": "0003", "role": "user"},
        {"id": "olga", "organization": "0003", "role": "organization"},
        {"id": "root", "role": "admin"},
    ],
    "extensions": [
        {
            "number": "0003*210",
            "owner": "alice",
            "fax": True,
            "callerId": "+15550100210",
            "header": "Acme Ltd",
        }
    ],
    "apps": [{"clientId": "alice-app", "clientSecret": "s3cret-alice", "owner": "alice"}],
}


def counts(sessions: Any) -> tuple[int, ...]:
    with sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Organization, User, Extension, App)
        )


def test_design_example_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    for _ in range(2):
        with sessions() as s:
            apply(s, parse(EXAMPLE))
            s.commit()
        assert counts(sessions) == (1, 3, 1, 1)
    changed = json.loads(json.dumps(EXAMPLE))
    changed["extensions"][0]["fax"] = False
    changed["apps"][0]["clientSecret"] = "new-secret-1"
    with sessions() as s:
        apply(s, parse(changed))
        s.commit()
    with sessions() as s:
        ext = s.scalar(select(Extension))
        assert ext is not None and ext.fax_enabled is False and ext.header == "Acme Ltd"
    engine.dispose()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f["users"].append({"id": "x", "organization": "0009"}), "users[3] ('x')"),
        (
            lambda f: f["users"].append({"id": "y", "role": "boss", "organization": "0003"}),
            "users[3]",
        ),
        (lambda f: f["extensions"].append({"number": "210", "owner": "alice"}), "extensions[1]"),
        (lambda f: f["extensions"].append({"number": "0003*211", "owner": "zed"}), "owner 'zed'"),
        (
            lambda f: f["apps"].append(
                {"clientId": "a", "clientSecret": "short", "owner": "alice"}
            ),
            "apps[1]",
        ),
        (lambda f: f["users"].append({"id": "alice", "organization": "0003"}), "listed twice"),
        (lambda f: f.update(extra=1), "extra"),
        (lambda f: f["extensions"][0].update(header="H" * 51), "extensions[0]"),
    ],
)
def test_errors_name_the_entry_and_change_nothing(
    database_url: str, mutate: Any, message: str
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    bad = json.loads(json.dumps(EXAMPLE))
    bad["organizations"].append({"code": "0004", "name": "Beta"})
    mutate(bad)
    with (
        pytest.raises(
            ProvisionError,
            match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)"),
        ),
        sessions() as s,
    ):
        apply(s, parse(bad))
        s.commit()
    assert counts(sessions) == (0, 0, 0, 0)
    engine.dispose()


def test_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(EXAMPLE))
    bad = tmp_path / "bad.json"
    broken = json.loads(json.dumps(EXAMPLE))
    broken["extensions"][0]["owner"] = "nobody"
    bad.write_text(json.dumps(broken))
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "faxline.cli", "provision", "--data-dir", str(data)]
    r = subprocess.run([*cmd, str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "extensions[0] ('0003*210'): owner 'nobody' does not exist" in r.stderr
    r = subprocess.run([*cmd, str(good)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "1 organizations, 3 users, 1 extensions, 1 apps, 0 routes, 0 trunks" in r.stdout
    r = subprocess.run([*cmd, str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot read" in r.stderr
