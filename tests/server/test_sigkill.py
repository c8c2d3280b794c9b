"""SIGKILL of `faxline serve` with faxes in flight: nothing of it lives on, and after a
restart every far end has received each fax exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from faxline.documents.faxtiff import read_fax_tiff
from faxline.store.models import Delivery, Extension, Fax
from faxline.testing import processes
from faxline.testing.waiting import OutputWatcher, eventually
from tests.server.test_serve import ROOT, free_port, free_udp_port, token

pytestmark = pytest.mark.slow
MARKER = "FAXLINE_TEST_PROCESS_MARKER"
FAXES = 3
SIMULATOR = "15550000001"  # answers every call
LOCAL = "0003*211"
CLI = [sys.executable, "-m", "faxline.cli"]


def marked(marker: str) -> list[int]:
    """Live processes of the node or server marked `marker`, and everything it started."""
    return processes.marked(MARKER, marker)


class Serve:
    """A `faxline serve` process on a data directory, its output watched."""

    def __init__(self, data: Path, port: int, log: Path) -> None:
        self.marker = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
        env.update(
            {
                MARKER: self.marker,
                "FAXLINE_SIP_LISTEN": f"127.0.0.1:{free_udp_port()}",
                "FAXLINE_PACED_CALLS": "true",  # real-time calls: they are in flight a while
                "FAXLINE_LEASE_S": "3",
                "FAXLINE_POLL_INTERVAL_S": "0.2",
            }
        )
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--data-dir", str(data), "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.output = OutputWatcher(self.proc.stdout, log)
        self.output.wait_for("Uvicorn running on", timeout=60)

    def kill_all(self) -> None:
        for pid in [self.proc.pid, *marked(self.marker)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.output.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    subprocess.run(
        [*CLI, "provision", "--data-dir", str(data), str(ROOT / "examples" / "demo.json")],
        check=True,
        capture_output=True,
        env=env,
    )
    return data


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.kill_all()


def received_at_simulator(data: Path) -> list[Path]:
    """Whole faxes the simulated far end holds (a call cut short leaves a ``.part``)."""
    return sorted((data / "simulator" / SIMULATOR).glob("*.tif"))


def test_sigkill_mid_calls_leaves_no_process_and_sends_each_fax_once(
    data: Path, servers: list[Serve], tmp_path: Path
) -> None:
    port = free_port()
    first = Serve(data, port, tmp_path / "serve-1.log")
    servers.append(first)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        alice = {"Authorization": f"Bearer {token(client, 'alice')}"}
        for n in range(FAXES):
            r = client.post(
                "/uapi/faxes/@me/0003*210",
                headers=alice,
                files=[
                    ("files", (f"fax-{n}.txt", f"Fax number {n}".encode(), "text/plain")),
                    ("request", (None, json.dumps({"recipients": [LOCAL, SIMULATOR]}))),
                ],
            )
            assert r.status_code == 200, r.text

    # Mid-calls: the simulator and the local extension are both receiving pages.
    simulator = data / "simulator" / SIMULATOR
    staging = data / "faxes"
    eventually(
        lambda: any(simulator.glob("delivery-*")) and any(staging.rglob(".tmp-*")),
        60,
        "both far ends to be receiving",
    )
    assert len(marked(first.marker)) > 1  # the server and its helpers
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    eventually(lambda: marked(first.marker) == [], 10, "every process of the killed server to end")
    first.output.close()

    second = Serve(data, port, tmp_path / "serve-2.log")
    servers.append(second)
    engine = create_engine(f"sqlite:///{data / 'faxline.sqlite3'}")
    try:

        def statuses() -> list[str]:
            with engine.connect() as conn:
                return list(conn.scalars(select(Delivery.status)))

        eventually(
            lambda: statuses() == ["delivered"] * (2 * FAXES), 180, "every delivery to finish"
        )
        with engine.connect() as conn:
            bob = conn.scalar(select(Extension.id).where(Extension.number == LOCAL))
            inbox = list(
                conn.scalars(
                    select(Fax.document).where(Fax.extension_id == bob, Fax.direction == "in")
                )
            )
    finally:
        engine.dispose()
    second.proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down, then re-raises the signal it caught.
    assert second.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    second.output.wait_for("Finished server process", timeout=10)
    # Its forkserver and resource tracker end on their pipes' EOF, just after it.
    eventually(lambda: marked(second.marker) == [], 10, "the server's helpers to end")

    assert len(inbox) == FAXES
    faxes = received_at_simulator(data)
    assert len(faxes) == FAXES, [p.name for p in faxes]
    # One whole fax per delivery: no delivery reached the simulator twice.
    deliveries = [p.name.split("-")[1] for p in faxes]
    assert len(set(deliveries)) == FAXES
    for path in faxes:
        assert len(read_fax_tiff(path.read_bytes())) == 1
