"""Several processes starting at once on a fresh PostgreSQL database: migrations run once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, make_url, text

from faxline.store.db import make_engine, migrate
from tests.conftest import PG_URL

STARTERS = 4

# What `faxline serve` and `faxline worker` do first, in a process that waits for a word
# on stdin before it starts, so that all of them start at the same moment.
STARTER = textwrap.dedent(
    """
    import sys
    from faxline.store.db import make_engine, migrate
    engine = make_engine(sys.argv[1])
    with engine.connect():
        pass
    print("ready", flush=True)
    sys.stdin.readline()
    print("migrated" if migrate(engine) is True else "current", flush=True)
    """
)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL to run this on it")
    url = make_url(PG_URL)
    name = f"{url.database}_race_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_processes_starting_at_once_migrate_once(fresh_database: str) -> None:
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, fresh_database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(STARTERS)
    ]
    try:
        for p in starters:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in starters:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in starters]
    finally:
        for p in starters:
            if p.poll() is None:
                p.kill()
                p.wait()
    errors = [err for _, err in results if "Traceback" in err]
    assert errors == [] and [p.returncode for p in starters] == [0] * STARTERS
    words = sorted(out.strip() for out, _ in results)
    assert words == ["current"] * (STARTERS - 1) + ["migrated"]


def test_a_current_schema_is_not_migrated_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert migrate(engine) is True
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        assert migrate(engine) is False
        # One look at the revision, no lock taken, nothing written.
        assert [s for s in statements if "alembic_version" in s]
        assert not [
            s
            for s in statements
            if "advisory" in s
            or s.lstrip().upper().startswith(("CREATE", "ALTER", "INSERT", "UPDATE"))
        ]
    finally:
        engine.dispose()
