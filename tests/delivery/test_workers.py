"""Real worker processes: SIGKILL mid-call, SIGTERM drain, two workers on one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pytest
from sqlalchemy import select

from faxline.store.models import Attempt, Delivery
from faxline.testing.waiting import eventually
from tests.delivery.conftest import World

pytestmark = pytest.mark.slow


@pytest.fixture
def start_worker(world: World) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        log = (world.settings.data_dir / f"worker-{len(started)}.log").open("wb")
        logs.append(log)
        environ = {
            **os.environ,
            "FAXLINE_DATABASE_URL": world.settings.sqlalchemy_url,
            "FAXLINE_POLL_INTERVAL_S": "0.2",
            "FAXLINE_LEASE_S": "3",
            **env,
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faxline.cli",
                "worker",
                "--data-dir",
                str(world.settings.data_dir),
            ],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its call processes share its group: one kill ends all
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for log in logs:
        log.close()


def delivery(world: World, fax_id: int) -> Delivery:
    (d,) = world.deliveries(fax_id)
    return d


def attempts(world: World, delivery_id: int) -> list[Attempt]:
    with world.sessions() as s:
        return list(
            s.scalars(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)
            )
        )


def test_sigkill_mid_call_is_delivered_exactly_once(
    world: World, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    world.pages = world.pages[:1]
    fax_id = world.queue(["0003*211"])
    paced = {"FAXLINE_PACED_CALLS": "true"}
    first = start_worker(**paced)
    # The far end opens the file it receives into once the page starts: mid-call.
    receiving = world.files.spool
    eventually(lambda: any(receiving.glob(".tmp-*")), 30, "the far end to start receiving")
    assert delivery(world, fax_id).status == "sending"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert delivery(world, fax_id).status == "sending"  # its lease runs out later
    assert world.inbox("0003*211") == []

    second = start_worker(**paced)
    eventually(lambda: delivery(world, fax_id).status == "delivered", 90, "the delivery")
    d = delivery(world, fax_id)
    assert d.attempts == 2 and d.pages_sent == 1
    assert [a.outcome for a in attempts(world, d.id)] == ["interrupted", "delivered"]
    os.kill(second.pid, signal.SIGTERM)  # whatever it had left to do is done when it ends
    assert second.wait(timeout=20) == 0
    assert len(world.inbox("0003*211")) == 1


def test_sigterm_gives_back_running_calls(
    world: World, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    world.pages = world.pages[:1]
    fax_id = world.queue(["0003*211"])
    worker = start_worker(FAXLINE_PACED_CALLS="true", FAXLINE_DRAIN_TIMEOUT_S="0.5")
    eventually(lambda: delivery(world, fax_id).attempts == 1, 30, "the call to start")
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    d = delivery(world, fax_id)
    assert d.status == "retrying" and d.lease_owner is None
    assert [a.outcome for a in attempts(world, d.id)] == ["interrupted"]
    # Nothing new starts after SIGTERM, and the fax is not half-delivered.
    assert world.inbox("0003*211") == []


def test_two_workers_never_run_the_same_delivery(
    world: World, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    world.pages = world.pages[:1]
    fax_ids = [world.queue(["0003*211"]) for _ in range(12)]
    start_worker()
    start_worker()
    eventually(
        lambda: all(delivery(world, f).status == "delivered" for f in fax_ids),
        120,
        "all deliveries",
    )
    for f in fax_ids:
        d = delivery(world, f)
        assert d.attempts == 1
        assert [a.outcome for a in attempts(world, d.id)] == ["delivered"]
    assert len(world.inbox("0003*211")) == 12
