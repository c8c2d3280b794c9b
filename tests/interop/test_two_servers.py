"""Two faxline servers fax each other through Kamailio, a record-routing proxy: T.38 both
ways, G.711 when a trunk says ``never``, pages identical, and every in-dialog request (ACK,
re-INVITE, BYE) sent through the proxy as its Record-Route asks."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.interop.conftest import (
    EAST_DID,
    EAST_EXT,
    WEST_EXT,
    WEST_G711,
    WEST_T38,
    Interop,
    fax_pages,
    matching,
)
from tests.interop.harness import FaxServer, Relayed, final, needs_peers

pytestmark = [pytest.mark.slow, needs_peers]


def dialogs(relayed: list[Relayed]) -> dict[str, list[Relayed]]:
    by_call: dict[str, list[Relayed]] = defaultdict(list)
    for request in relayed:
        by_call[request.call_id].append(request)
    return by_call


def call_to(number: str, caller: FaxServer, relayed: list[Relayed]) -> list[Relayed]:
    """The requests of the one call ``caller`` placed to ``number`` through the proxy."""
    calls = [
        requests
        for requests in dialogs(relayed).values()
        if requests[0].method == "INVITE"
        and not requests[0].in_dialog
        and number in requests[0].uri
        and requests[0].source == caller.sip_address
    ]
    assert len(calls) == 1, calls
    return calls[0]


def routed(requests: list[Relayed], method: str, source: FaxServer) -> list[Relayed]:
    return [
        r
        for r in requests
        if r.method == method and r.routed and r.in_dialog and r.source == source.sip_address
    ]


def test_t38_both_ways_and_g711_through_a_record_routing_proxy(interop: Interop) -> None:
    east, west = interop.east, interop.west
    t38_tiff, _ = fax_pages(2, seed=11)
    back_tiff, _ = fax_pages(1, seed=12)
    g711_tiff, _ = fax_pages(1, seed=13)
    # The proxy lives for the whole session: other tests' calls are logged before ours.
    before = len(interop.kamailio.relayed())
    with interop.alice() as alice, interop.bob() as bob:
        # Three calls at once: east -> west on T.38, west -> east on T.38, east -> west on
        # the trunk that says "never" (G.711 all the way, west's re-INVITE refused).
        to_west = east.send(alice, EAST_EXT, [WEST_T38], t38_tiff)
        to_west_g711 = east.send(alice, EAST_EXT, [WEST_G711], g711_tiff)
        to_east = west.send(bob, WEST_EXT, [EAST_DID], back_tiff)

        def done(deliveries: list[dict[str, object]]) -> bool:
            return final(str(d["status"]) for d in deliveries)

        views = [
            east.wait_for_deliveries(alice, EAST_EXT, to_west, done, timeout=90),
            east.wait_for_deliveries(alice, EAST_EXT, to_west_g711, done, timeout=90),
            west.wait_for_deliveries(bob, WEST_EXT, to_east, done, timeout=90),
        ]
        transports = []
        for view in views:
            (delivery,) = view["deliveries"]
            assert (delivery["status"], delivery["attempts"]) == ("delivered", 1), view
            assert delivery["ecm"] is True, view
            transports.append(delivery["transport"])
        assert transports == ["t38", "audio", "t38"]
        assert views[0]["deliveries"][0]["pagesSent"] == 2

        # What arrived is what was sent, page for page, pixel for pixel.
        at_west = [west.document(bob, WEST_EXT, f["id"]) for f in west.inbox(bob, WEST_EXT)]
        at_east = [east.document(alice, EAST_EXT, f["id"]) for f in east.inbox(alice, EAST_EXT)]
        matching(at_west, east.document(alice, EAST_EXT, to_west))
        matching(at_west, east.document(alice, EAST_EXT, to_west_g711))
        matching(at_east, west.document(bob, WEST_EXT, to_east))

    # The proxy saw every in-dialog request, each routed by its Route header: a UA that
    # sent its ACK, re-INVITE or BYE straight to the other UA would fail this.
    relayed = interop.kamailio.relayed()[before:]
    for caller, callee, number, switched in (
        (east, west, WEST_T38, True),
        (west, east, EAST_DID, True),
        (east, west, WEST_G711, False),
    ):
        requests = call_to(number, caller, relayed)
        assert routed(requests, "ACK", caller), requests
        # The answering side always re-INVITEs to T.38 (refused with 488 on "never").
        assert len(routed(requests, "INVITE", callee)) == 1, requests
        if switched:
            assert routed(requests, "ACK", callee), requests
        byes = routed(requests, "BYE", caller) + routed(requests, "BYE", callee)
        assert byes, requests
