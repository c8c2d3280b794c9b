"""The shipped Kamailio front (deploy/kamailio/faxline.cfg) in front of two faxline nodes:
inbound calls from a carrier reach the nodes in turn; a node that was killed is marked down
by the OPTIONS probes and skipped, and taken back once it answers again; a fax that a node
sends leaves through the front to the carrier."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import SERVER_ENV, fax_pages, matching
from tests.interop.harness import (
    FaxServer,
    Kamailio,
    final,
    needs_peers,
    wait_until,
)

pytestmark = [pytest.mark.slow, needs_peers]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"
CARRIER = ("carrier-app", "s3cret-carrier")
OFFICE = ("office-app", "s3cret-office")
CARRIER_EXT, OFFICE_EXT = "0007*100", "0008*300"
CARRIER_DID, OFFICE_DID = "+15550700100", "+15550800100"


class KamailioFront(Kamailio):
    """Kamailio running the shipped front configuration over a dispatcher list."""

    def __init__(self, workdir: Path, nodes: list[FaxServer], carrier: FaxServer) -> None:
        super().__init__(workdir)
        self.nodes, self.carrier = nodes, carrier

    def configure(self) -> tuple[Path, dict[str, str]]:
        listing = self.workdir / "dispatcher.list"
        lines = [f"1 {node.sip_uri}" for node in self.nodes] + [f"2 {self.carrier.sip_uri}"]
        listing.write_text("\n".join(lines) + "\n")
        return DEPLOY / "faxline.cfg", {
            "LISTEN": f"udp:127.0.0.1:{self.port}",
            "DISPATCHER_LIST": f'"{listing}"',
            "PING_INTERVAL": "1",
            "NODE_TIMEOUT_MS": "1000",
        }

    def dispatched(self) -> list[tuple[str, str, str]]:
        """(method, call id, destination) of each new request sent on, failovers included."""
        pattern = re.compile(r"dispatch: method=(\S+) callid=(\S+) .*dst=(\S+)")
        return [
            (m.group(1), m.group(2), m.group(3))
            for m in map(pattern.search, self.log.read_text(errors="replace").splitlines())
            if m is not None
        ]

    def marked(self, state: str, node: FaxServer) -> bool:
        return f"dispatcher: {state} {node.sip_uri}" in self.log.read_text(errors="replace")


def carrier_spec(front: Kamailio) -> Any:
    return {
        "organizations": [{"code": "0007", "name": "Carrier"}],
        "users": [{"id": "carol", "organization": "0007"}],
        "extensions": [
            {
                "number": CARRIER_EXT,
                "owner": "carol",
                "fax": True,
                "callerId": CARRIER_DID,
                "header": "Carrier",
                "dids": [CARRIER_DID],
            }
        ],
        "apps": [{"clientId": CARRIER[0], "clientSecret": CARRIER[1], "owner": "carol"}],
        # The carrier reaches the fax service at the front's one address.
        "trunks": [{"name": "faxline", "uri": front.uri, "prefixes": ["+1555080"]}],
    }


def node_spec(front: Kamailio) -> Any:
    # Every node is provisioned alike; each leaves through the front.
    return {
        "organizations": [{"code": "0008", "name": "Office"}],
        "users": [{"id": "oscar", "organization": "0008"}],
        "extensions": [
            {
                "number": OFFICE_EXT,
                "owner": "oscar",
                "fax": True,
                "callerId": OFFICE_DID,
                "header": "Office",
                "dids": [OFFICE_DID],
            }
        ],
        "apps": [{"clientId": OFFICE[0], "clientSecret": OFFICE[1], "owner": "oscar"}],
        "trunks": [{"name": "carrier", "uri": front.uri, "prefixes": ["+1555070"]}],
    }


@dataclass
class Front:
    kamailio: KamailioFront
    carrier: FaxServer
    nodes: list[FaxServer]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    workdir = tmp_path_factory.mktemp("front")
    carrier = FaxServer("carrier", workdir, SERVER_ENV)
    nodes = [FaxServer(f"node{i}", workdir, SERVER_ENV) for i in (1, 2)]
    kamailio = KamailioFront(workdir / "kamailio", nodes, carrier)
    servers = [carrier, *nodes]
    try:
        carrier.provision(carrier_spec(kamailio))
        for node in nodes:
            node.provision(node_spec(kamailio))
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        kamailio.start()
        yield Front(kamailio, carrier, nodes)
    finally:
        for process in (*servers, kamailio):
            process.stop()


def received(node: FaxServer) -> list[dict[str, Any]]:
    with node.client(*OFFICE) as office:
        return node.inbox(office, OFFICE_EXT)


def send_inbound(front: Front, count: int, seed: int) -> list[int]:
    """The carrier faxes the office `count` times at once; return the fax ids."""
    with front.carrier.client(*CARRIER) as carol:
        return [
            front.carrier.send(carol, CARRIER_EXT, [OFFICE_DID], fax_pages(1, seed=seed + i)[0])
            for i in range(count)
        ]


def delivered_once(server: FaxServer, app: tuple[str, str], extension: str, ids: list[int]) -> None:
    with server.client(*app) as client:
        for fax_id in ids:
            view = server.wait_for_deliveries(
                client,
                extension,
                fax_id,
                lambda ds: final(str(d["status"]) for d in ds),
                timeout=90,
            )
            (delivery,) = view["deliveries"]
            assert (delivery["status"], delivery["attempts"]) == ("delivered", 1), view


def invites_to(front: Front, since: int) -> list[str]:
    return [dst for method, _, dst in front.kamailio.dispatched()[since:] if method == "INVITE"]


def test_calls_take_turns_skip_a_dead_node_and_leave_through_the_front(front: Front) -> None:
    node1, node2 = front.nodes
    carrier = front.carrier
    with carrier.client(*CARRIER) as carol:
        carrier_before = len(carrier.inbox(carol, CARRIER_EXT))

    # Two calls from the carrier take turns; node 2 sends one out through the front.
    mark = len(front.kamailio.dispatched())
    inbound = send_inbound(front, 2, seed=70)
    outbound_tiff, _ = fax_pages(1, seed=75)
    with node2.client(*OFFICE) as office:
        outbound = node2.send(office, OFFICE_EXT, [CARRIER_DID], outbound_tiff)
    delivered_once(carrier, CARRIER, CARRIER_EXT, inbound)
    delivered_once(node2, OFFICE, OFFICE_EXT, [outbound])
    assert [len(received(n)) for n in front.nodes] == [1, 1]
    assert Counter(invites_to(front, mark)) == Counter(
        {node1.sip_uri: 1, node2.sip_uri: 1, carrier.sip_uri: 1}
    )
    with carrier.client(*CARRIER) as carol:
        faxes = carrier.inbox(carol, CARRIER_EXT)
        assert len(faxes) == carrier_before + 1
        matching([carrier.document(carol, CARRIER_EXT, f["id"]) for f in faxes], outbound_tiff)

    # Node 1 dies. Calls placed at once end at node 2 in one attempt each: a call that
    # round robin offers to node 1 before a probe noticed fails over within the timeout.
    assert node1.process is not None
    node1.process.kill()
    node1.process.wait()
    mark = len(front.kamailio.dispatched())
    delivered_once(carrier, CARRIER, CARRIER_EXT, send_inbound(front, 2, seed=80))
    assert len(received(node2)) == 3
    assert invites_to(front, mark).count(node2.sip_uri) == 2

    # Once the probes marked it down, new calls go straight to node 2.
    wait_until(lambda: front.kamailio.marked("down", node1), timeout=20, what="node1 down")
    mark = len(front.kamailio.dispatched())
    delivered_once(carrier, CARRIER, CARRIER_EXT, send_inbound(front, 2, seed=90))
    assert invites_to(front, mark) == [node2.sip_uri, node2.sip_uri]
    assert len(received(node2)) == 5
