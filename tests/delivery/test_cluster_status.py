"""Nodes' heartbeats and `faxline status`: what the cluster shows, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from faxline.delivery import queue
from faxline.store import nodes
from faxline.testing.live import live_server
from tests.delivery.conftest import World

ROOT = Path(__file__).resolve().parents[2]


def node(name: str, max_calls: int = 4) -> nodes.NodeIdentity:
    return nodes.NodeIdentity(id=name, host="h1", pid=1234, role="worker", max_calls=max_calls)


def test_status_shows_nodes_their_calls_and_the_queue(world: World) -> None:
    fax_ids = [world.queue(["0003*211"]) for _ in range(3)]
    with world.sessions() as s:
        (claim,) = queue.claim_due(s, "node-a", 1, world.clock(), lease_s=60)
        nodes.beat(s, node("node-a", 2), calls_running=1)
        nodes.beat(s, node("node-b"), calls_running=0)
        nodes.beat(s, node("node-b"), calls_running=0)  # a second beat updates the row
        status = nodes.cluster_status(s, stale_after_s=60)
    assert [n.id for n in status.alive] == ["node-a", "node-b"]
    a, b = status.nodes
    assert (a.leases, a.calls_running, a.max_calls) == (1, 1, 2)
    assert (b.leases, b.calls_running) == (0, 0)
    assert status.queue == {"queued": 2, "sending": 1}
    assert status.due == 2 and status.orphaned == 0
    waiting = [
        world.deliveries(f)[0].id for f in fax_ids if world.deliveries(f)[0].id != claim.delivery_id
    ]
    assert status.oldest_due_id == min(waiting)
    text = nodes.render(status)
    assert "nodes: 2 alive, 0 silent" in text
    assert "node-a  worker alive  pid 1234 on h1, 1/2 deliveries sending, 1 calls" in text
    assert "deliveries: queued 2, sending 1" in text
    assert f"oldest is delivery {min(waiting)}" in text

    time.sleep(0.3)
    with world.sessions() as s:
        nodes.beat(s, node("node-b"), calls_running=0)
        later = nodes.cluster_status(s, stale_after_s=0.2)
        nodes.leave(s, "node-b")
        gone = nodes.cluster_status(s, stale_after_s=60)
    assert [n.id for n in later.alive] == ["node-b"]  # node-a stopped beating
    assert "nodes: 1 alive, 1 silent" in nodes.render(later)
    assert [n.id for n in gone.nodes] == ["node-a"]


def test_status_of_an_empty_cluster(world: World) -> None:
    with world.sessions() as s:
        text = nodes.render(nodes.cluster_status(s, stale_after_s=15))
    assert text == "nodes: 0 alive, 0 silent\ndeliveries: empty\ndue now: 0"


def status(env: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faxline.cli", "status", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_beats_and_leaves(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    settings = {"FAXLINE_HEARTBEAT_S": "0.5"}
    if not database_url.startswith("sqlite"):
        settings["FAXLINE_DATABASE_URL"] = database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    env.update(settings)
    with live_server(
        data_dir, ROOT / "examples" / "demo.json", tmp_path / "serve.log", settings
    ) as server:
        shown = status(env, data_dir)
        assert shown.returncode == 0, shown.stderr
        assert "nodes: 1 alive, 0 silent" in shown.stdout
        assert f"serve  alive  pid {server.process.pid} " in shown.stdout
        assert "deliveries: empty" in shown.stdout
    after = status(env, data_dir)  # SIGTERM: the node took its row away
    assert after.stdout.startswith("nodes: 0 alive, 0 silent"), after.stdout


def test_status_without_a_database_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXLINE_")}
    shown = status(env, tmp_path / "nothing")
    assert shown.returncode == 1
    assert shown.stderr.strip() == f"faxline status: no database in {tmp_path / 'nothing'}"
    assert not (tmp_path / "nothing").exists()  # looking created nothing
