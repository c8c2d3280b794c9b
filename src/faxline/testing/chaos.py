"""The chaos run (issue 12): `faxline serve` nodes on one PostgreSQL, faxes to a local
extension and to a simulator number, one node SIGKILLed at random every few seconds and
started again; then every fax must have reached its far end exactly once, nothing may be
left in `sending`, and no process of a killed node may live on.

Shared by the CI test (tests/server/test_chaos.py, a reduced form) and bench/chaos (the
full form). It looks at the outcome from outside, as an auditor would: the database
through plain SQL, the simulated far end's folder, /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from faxline.procs import child_preexec
from faxline.testing import processes
from faxline.testing.live import free_port
from faxline.testing.waiting import OutputWatcher, eventually

MARKER = "FAXLINE_CHAOS_NODE"
SENDER = "0003*210"
LOCAL = "0003*211"
SIMULATOR = "15550000001"  # answers every call
CLI = [sys.executable, "-m", "faxline.cli"]
FINAL = ("delivered", "failed", "cancelled")


def marked(marker: str) -> list[int]:
    """Live processes of the node or server marked `marker`, and everything it started."""
    return processes.marked(MARKER, marker)


class Node:
    """One `faxline serve` on its own data directory and port, which can be SIGKILLed and
    started again. Each start gets a new marker, so what a killed start left is told apart
    from the next start's processes."""

    def __init__(self, name: str, data: Path, settings: dict[str, str], logs: Path) -> None:
        self.name = name
        self.data = data
        self.settings = settings
        self.logs = logs
        self.port = free_port()
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: OutputWatcher | None = None
        self.marker = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.marker = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
        env.update(self.settings)
        env[MARKER] = self.marker
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--data-dir", str(self.data), "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec,  # a node ends with the run that started it
        )
        assert self.proc.stdout is not None
        self.output = OutputWatcher(self.proc.stdout, self.logs / f"{self.name}.log")
        self.output.wait_for("Uvicorn running on", timeout=120)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, grace_s: float = 20.0) -> list[int]:
        """SIGKILL the server process alone (as a crash would) and wait for everything it
        started to end by itself; returns the pids that outlived `grace_s` (orphans),
        which are then killed so they cannot spoil the rest of the run."""
        assert self.proc is not None and self.output is not None
        marker = self.marker
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.output.close()
        with contextlib.suppress(AssertionError):
            eventually(lambda: marked(marker) == [], grace_s, "the node's processes to end")
        orphans = marked(marker)
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return orphans

    def stop(self, grace_s: float = 30.0) -> list[int]:
        """SIGTERM, then wait for its helpers to end; the pids left over (orphans)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        assert self.output is not None
        marker = self.marker
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.output.close()
        with contextlib.suppress(AssertionError):
            eventually(lambda: marked(marker) == [], grace_s, "the node's helpers to end")
        orphans = marked(marker)
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return orphans


@dataclass
class ChaosReport:
    faxes: int = 0
    kills: int = 0
    kills_mid_call: int = 0  # kills of a node that held `sending` deliveries then
    statuses: dict[str, int] = field(default_factory=dict)
    stuck: int = 0  # deliveries still `sending` (or waiting) at the end
    inbox: int = 0  # faxes in the local extension's inbox
    local_faxes: int = 0
    simulator_faxes: int = 0
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    taken_over: int = 0  # deliveries with an interrupted attempt (a killed holder)
    asked_far_end: int = 0  # simulator deliveries completed from the far end's copy
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        delivered = self.statuses.get("delivered", 0) == self.faxes
        clean = not (self.duplicates or self.missing or self.orphans or self.stuck)
        return delivered and clean

    def summary(self) -> str:
        return (
            f"faxes {self.faxes} (local {self.local_faxes}, simulator {self.simulator_faxes}),"
            f" kills {self.kills} ({self.kills_mid_call} mid-call),"
            f" duplicates {len(self.duplicates)}, missing {len(self.missing)},"
            f" stuck {self.stuck}, orphans {len(self.orphans)},"
            f" taken over {self.taken_over}, far end asked {self.asked_far_end},"
            f" statuses {self.statuses}, time {self.seconds:.1f} s"
        )


def run_chaos(
    work: Path,
    database_url: str,
    provision: Path,
    *,
    faxes: int,
    nodes: int = 3,
    kill_every_s: float = 10.0,
    max_kills: int | None = None,
    seed: int = 12,
    timeout_s: float = 600.0,
    settings: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> ChaosReport:
    """Run the chaos on an empty PostgreSQL database at `database_url` (the caller empties
    it) with working files under `work`; returns what the audit found."""
    rng = random.Random(seed)
    report = ChaosReport(faxes=faxes)
    started = time.monotonic()
    far_end = work / "simulator"  # one far end for the whole cluster
    shared = {
        "FAXLINE_DATABASE_URL": database_url,
        "FAXLINE_SIMULATOR_DIR": str(far_end),
        "FAXLINE_SIP_LISTEN": "off",
        "FAXLINE_LEASE_S": "3",  # a killed node's deliveries are free again in 3 s
        "FAXLINE_POLL_INTERVAL_S": "0.2",
        **(settings or {}),
    }
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    env.update(shared)
    subprocess.run(
        [*CLI, "provision", "--data-dir", str(work / "node-0"), str(provision)],
        check=True,
        capture_output=True,
        env=env,
    )
    cluster = [Node(f"node-{n}", work / f"node-{n}", shared, logs) for n in range(nodes)]
    engine = create_engine(database_url)
    try:
        for node in cluster:
            node.start()
        say(f"{nodes} nodes up after {time.monotonic() - started:.1f} s")

        def waiting() -> int:
            with engine.connect() as conn:
                query = text(
                    "SELECT count(*) FROM deliveries"
                    " WHERE status NOT IN ('delivered', 'failed', 'cancelled')"
                )
                return int(conn.scalar(query) or 0)

        def holding(pid: int) -> int:
            with engine.connect() as conn:
                query = text(
                    "SELECT count(*) FROM deliveries WHERE status = 'sending'"
                    " AND lease_owner LIKE :owner"
                )
                return int(conn.scalar(query, {"owner": f"%:{pid}:%"}) or 0)

        deadline = started + timeout_s
        submitted = 0
        next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * kill_every_s
        with httpx.Client(timeout=120) as client:
            alice = _token(client, cluster[0])
            # Faxes are queued and nodes killed in turn, from this one thread: a kill never
            # cuts a request (a client whose request was cut would not know whether its
            # fax exists: that is the API's concern, not the dispatcher's).
            while True:
                if time.monotonic() > deadline:
                    say("timed out")
                    break
                if submitted < faxes:
                    _submit(client, alice, cluster[submitted % nodes], submitted)
                    submitted += 1
                    if submitted % 100 == 0 or submitted == faxes:
                        say(f"{submitted} faxes queued at {time.monotonic() - started:.1f} s")
                    left = None
                else:
                    left = waiting()
                if max_kills is None:
                    kills_left = submitted < faxes or bool(left)
                else:
                    kills_left = report.kills < max_kills
                if kills_left and time.monotonic() >= next_kill:
                    # A node that holds calls, if any does: a kill should cut something.
                    pids = {node.pid: holding(node.pid) for node in cluster}
                    busy = [node for node in cluster if pids[node.pid]] or cluster
                    victim = rng.choice(busy)
                    held = pids[victim.pid]
                    report.orphans += victim.kill()
                    report.kills += 1
                    report.kills_mid_call += held > 0
                    say(
                        f"kill {report.kills} at {time.monotonic() - started:.1f} s:"
                        f" {victim.name} (pid {victim.pid}, {held} sending)"
                    )
                    victim.start()
                    next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * kill_every_s
                elif left == 0 and not kills_left:
                    break
                elif left is not None:
                    time.sleep(0.2)
        for node in cluster:
            report.orphans += node.stop()
        _audit(engine, far_end, report)
    finally:
        for node in cluster:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
        engine.dispose()
    report.seconds = time.monotonic() - started
    return report


def _token(client: httpx.Client, node: Node) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": "alice-app",
            "client_secret": "s3cret-alice"}  # fmt: skip
    r = client.post(f"{node.base}/oauth/token.php", data=form)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _submit(client: httpx.Client, alice: dict[str, str], node: Node, n: int) -> None:
    """Queue fax `n` through `node`: even ones to the local extension, odd ones to the
    simulator."""
    recipient = LOCAL if n % 2 == 0 else SIMULATOR
    r = client.post(
        f"{node.base}/uapi/faxes/@me/{SENDER}",
        headers=alice,
        files=[
            ("files", (f"fax-{n}.txt", f"Chaos fax number {n}\n".encode(), "text/plain")),
            ("request", (None, json.dumps({"recipients": [recipient]}))),
        ],
    )
    assert r.status_code == 200, r.text


def _audit(engine, far_end: Path, report: ChaosReport) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT d.id, d.destination, d.status, d.t30_text FROM deliveries d ORDER BY d.id")
        ).all()
        inbox = conn.scalar(
            text(
                "SELECT count(*) FROM faxes f JOIN extensions e ON f.extension_id = e.id"
                " WHERE e.number = :number AND f.direction = 'in'"
            ),
            {"number": LOCAL},
        )
        interrupted = conn.scalar(
            text("SELECT count(DISTINCT delivery_id) FROM attempts WHERE outcome = 'interrupted'")
        )
    report.statuses = dict(Counter(row.status for row in rows))
    report.stuck = sum(1 for row in rows if row.status not in FINAL)
    report.taken_over = int(interrupted or 0)
    local = [row for row in rows if row.destination == LOCAL]
    simulated = [row for row in rows if row.destination == SIMULATOR]
    report.local_faxes, report.simulator_faxes = len(local), len(simulated)
    report.inbox = int(inbox or 0)
    # Each recipient's inbox holds each fax once: as many received faxes as deliveries.
    if report.inbox > len(local):
        report.duplicates.append(f"inbox {LOCAL}: {report.inbox} faxes for {len(local)}")
    elif report.inbox < len(local):
        report.missing.append(f"inbox {LOCAL}: {report.inbox} faxes for {len(local)}")
    # The simulated far end counts each delivery once: one whole fax per delivery id.
    held = Counter(int(p.name.split("-")[1]) for p in (far_end / SIMULATOR).glob("delivery-*.tif"))
    for row in simulated:
        if held[row.id] > 1:
            report.duplicates.append(f"delivery {row.id}: the far end got it {held[row.id]}x")
        elif held[row.id] == 0:
            report.missing.append(f"delivery {row.id}: the far end never got it")
        if row.t30_text and "already held" in row.t30_text:
            report.asked_far_end += 1
