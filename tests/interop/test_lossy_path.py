"""A T.38 fax between two faxline servers over a path that loses 5% of all datagrams, SIP
and media alike (the lossy hop of lossy_hop.py, built on faxline.testing.relay): the pages
arrive identical, the SIP transactions retransmit what was lost, and UDPTL redundancy
recovers lost packets without a round trip."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from faxline.testing.relay import Direction
from tests.interop.conftest import EAST_EXT, WEST_EXT, WEST_LOSSY, Interop, fax_pages, matching
from tests.interop.harness import final, needs_peers
from tests.interop.lossy_hop import LossyHop

pytestmark = [pytest.mark.slow, needs_peers]

LOSS = 0.05
SEED = 336  # east -> west loses the very first datagram: the INVITE must be retransmitted


def udptl_stats(log: str) -> list[dict[str, int]]:
    """The counters of every UDPTL stream a server logged as ended."""
    out = []
    for line in log.splitlines():
        if "udptl stream ended:" in line:
            counts = re.findall(r"(\d+) ([a-z]+)", line.split("udptl stream ended:", 1)[1])
            out.append({name: int(value) for value, name in counts})
    return out


def test_t38_fax_survives_a_lossy_path(interop: Interop) -> None:
    east, west = interop.east, interop.west
    tiff, _ = fax_pages(1, seed=31)
    west_log_before = len(west.log_path.read_text(errors="replace"))

    def send_and_wait() -> dict[str, Any]:
        with interop.alice() as alice:
            fax_id = east.send(alice, EAST_EXT, [WEST_LOSSY], tiff)
            return east.wait_for_deliveries(
                alice, EAST_EXT, fax_id, lambda ds: final(d["status"] for d in ds), timeout=90
            )

    async def main() -> tuple[dict[str, Any], LossyHop]:
        hop = await LossyHop.open(
            interop.lossy_ports, east.sip_address, west.sip_address, loss=LOSS, seed=SEED
        )
        try:
            return await asyncio.to_thread(send_and_wait), hop
        finally:
            hop.close()

    view, hop = asyncio.run(main())
    (delivery,) = view["deliveries"]
    assert delivery["status"] == "delivered", (view, east.log(), west.log())
    assert delivery["transport"] == "t38" and delivery["attempts"] == 1, delivery
    with interop.alice() as alice, interop.bob() as bob:
        at_west = [west.document(bob, WEST_EXT, f["id"]) for f in west.inbox(bob, WEST_EXT)]
        matching(at_west, east.document(alice, EAST_EXT, view["id"]))

    assert hop.sip.errors == []
    # The path really lost SIP and media, both ways.
    assert hop.sip.stats[Direction.A_TO_B].dropped >= 1  # the first INVITE at least
    (image,) = hop.media_relays("image")
    assert all(image.stats[d].dropped > 0 for d in Direction), image.stats
    # West, the receiver, got the sender's lost UDPTL packets back from the redundancy of
    # later packets (the stream counts them as "recovered").
    streams = udptl_stats(west.log_path.read_text(errors="replace")[west_log_before:])
    assert any(s.get("recovered", 0) > 0 for s in streams), streams
