"""Deliveries as operators see them: counters (the T.30 ones counted in the call process
and relayed), JSON log lines with the delivery's ids, and call records that round-trip."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys

from prometheus_client import REGISTRY

from faxline.api.redact import redact
from faxline.metrics.logs import JsonFormatter
from faxline.store import records
from tests.delivery.conftest import World


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_delivered_and_failed_faxes_move_the_counters_and_log_their_ids(world: World) -> None:
    delivered = {"outcome": "delivered", "reason": ""}
    t30_ok = {"code": "0", "direction": "sent"}
    before = (
        value("faxline_deliveries_finished_total", **delivered),
        value("faxline_pages_total", direction="sent"),
        value("faxline_t30_completions_total", **t30_ok),
        value("faxline_attempts_total", transport="t38", trunk="local", outcome="delivered"),
        value("faxline_faxes_created_total", organization="0003"),
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(redact))
    logger = logging.getLogger("faxline")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        good = world.queue(["0003*211"])
        world.run(world.dispatcher())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert world.deliveries(good)[0].status == "delivered"
    after = (
        value("faxline_deliveries_finished_total", **delivered),
        value("faxline_pages_total", direction="sent"),
        value("faxline_t30_completions_total", **t30_ok),
        value("faxline_attempts_total", transport="t38", trunk="local", outcome="delivered"),
        value("faxline_faxes_created_total", organization="0003"),
    )
    # The T.30 session ran in a call process: its pages and code reached this process.
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 3, 1, 1, 1]
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    finished = [
        e for e in entries if e["message"].startswith(f"delivery {world.deliveries(good)[0].id} ")
    ]
    assert finished and finished[0]["fax_id"] == good
    assert finished[0]["trunk"] == "local" and "attempt_id" in finished[0]

    bad = world.queue(["999"])
    reasons = ("no_route", "invalid_number", "unavailable")
    before_failed = {
        r: value("faxline_deliveries_finished_total", outcome="failed", reason=r) for r in reasons
    }
    world.run(world.dispatcher())
    (d,) = world.deliveries(bad)
    assert d.status == "failed" and d.failure_reason in before_failed
    reason = d.failure_reason
    now_failed = value("faxline_deliveries_finished_total", outcome="failed", reason=reason)
    assert now_failed == before_failed[reason] + 1


def test_call_records_round_trip_as_csv_and_json(world: World) -> None:
    fax_id = world.queue(["0003*211"])
    world.run(world.dispatcher())
    with world.sessions() as s:
        rows = list(records.export(s))
    (row,) = [r for r in rows if r["fax_id"] == fax_id]
    assert row["direction"] == "out" and row["outcome"] == "delivered"
    assert row["local_number"] == "0003*210" and row["remote_number"] == "0003*211"
    assert row["trunk"] == "local" and row["pages"] == 3 and row["t30_code"] == 0
    assert row["answered"] and row["started"] <= row["answered"] <= row["ended"]
    text = io.StringIO()
    records.write_csv(rows, text)  # type: ignore[arg-type]
    assert records.parse_csv(text.getvalue()) == rows
    lines = io.StringIO()
    records.write_json(rows, lines)  # type: ignore[arg-type]
    assert [json.loads(line) for line in lines.getvalue().splitlines()] == rows


def test_records_command_exports_the_calls_since_a_time(world: World) -> None:
    """`faxline records` as an operator runs it: the database from the environment (or the
    data directory's SQLite), `--since` keeps only later calls, both formats parse."""
    early = world.queue(["0003*211"])
    world.run(world.dispatcher())
    world.clock.advance(3600)
    since = world.clock().isoformat().replace("+00:00", "Z")
    late = world.queue(["0003*211"])
    world.run(world.dispatcher())

    env = {**os.environ, "FAXLINE_DATABASE_URL": world.settings.sqlalchemy_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        data_dir = str(world.settings.data_dir)
        command = [sys.executable, "-m", "faxline.cli", "records", "--data-dir", data_dir, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    everything = run("--format", "json")
    assert everything.returncode == 0, everything.stderr
    faxes = [json.loads(line)["fax_id"] for line in everything.stdout.splitlines()]
    assert early in faxes and late in faxes

    later = run("--since", since, "--format", "json")
    assert later.returncode == 0, later.stderr
    rows = [json.loads(line) for line in later.stdout.splitlines()]
    assert [r["fax_id"] for r in rows] == [late]
    assert rows[0]["started"] >= since

    as_csv = run("--since", since, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert records.parse_csv(as_csv.stdout) == rows

    wrong = run("--since", "yesterday", "--format", "csv")
    assert wrong.returncode == 2 and "not an ISO 8601 time: yesterday" in wrong.stderr
    assert wrong.stdout == ""


def test_calls_in_progress_are_up_during_the_call_and_down_after(world: World) -> None:
    """The gauge an operator alerts on (calls at the limit) is 1 while the call runs in its
    call process and back to 0 when it ended; the limit is the node's FAXLINE_MAX_CALLS."""
    fax_id = world.queue(["0003*211"])
    dispatcher = world.dispatcher()
    seen: list[float] = []  # calls up and the limit, at the first look during the call

    async def go() -> None:
        running = asyncio.ensure_future(world.deliver(dispatcher))
        while not running.done():
            up = value("faxline_calls_in_progress", direction="out", trunk="local")
            if up and not seen:
                seen.extend([up, value("faxline_call_limit", direction="out")])
            await asyncio.sleep(0.005)
        await running

    before = value("faxline_calls_in_progress", direction="out", trunk="local")
    assert before == 0
    asyncio.run(go())
    assert seen == [1, world.settings.max_calls]
    assert world.deliveries(fax_id)[0].status == "delivered"
    assert value("faxline_calls_in_progress", direction="out", trunk="local") == 0
