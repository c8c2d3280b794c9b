"""Three `faxline serve` nodes on one PostgreSQL, faxes to a local extension and to a
simulator number, a node SIGKILLed at random every few seconds and started again: every
fax arrives exactly once, nothing stays in `sending`, no process of a killed node lives on
(issue 12). The reduced form; bench/chaos runs the full one."""

from __future__ import annotations

from pathlib import Path

import pytest

from faxline.testing.chaos import run_chaos
from tests.conftest import PG_URL, reset_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


def test_three_nodes_under_kills_deliver_each_fax_once(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL to run this on it")
    reset_postgres(PG_URL)
    lines: list[str] = []
    report = run_chaos(
        tmp_path,
        PG_URL,
        ROOT / "examples" / "demo.json",
        faxes=100,
        kill_every_s=4.0,
        max_kills=3,
        timeout_s=300,
        say=lines.append,
    )
    print("\n".join(lines))
    print(report.summary())
    assert report.kills == 3, report.summary()
    assert report.duplicates == [], report.summary()
    assert report.missing == [], report.summary()
    assert report.stuck == 0, report.summary()
    assert report.orphans == [], report.summary()
    assert report.statuses == {"delivered": 100}, report.summary()
    assert report.inbox == report.local_faxes == 50
