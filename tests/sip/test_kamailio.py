"""A call through Kamailio as a record-routing proxy (Debian ``kamailio``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer, make_offer
from faxline.sip.ua import CallEnded, ReInvite, UserAgent
from faxline.sip.uri import SipUri
from tests.interop.harness import Kamailio, needs_peers

pytestmark = [pytest.mark.slow, needs_peers]
CAPS = Capabilities()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Kamailio on loopback; started once it answers (the harness's one polling helper)."""
    kamailio = Kamailio(tmp_path / "kamailio")
    kamailio.start()
    try:
        yield kamailio.address
    finally:
        kamailio.stop()


def test_call_through_record_routing_proxy(proxy: tuple[str, int]) -> None:
    async def main() -> None:
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
        try:
            host, port = bob.address
            target = SipUri(host=host, port=port, user="bob")
            media_a = LocalMedia("127.0.0.1", 40000, 40002)
            media_b = LocalMedia("127.0.0.1", 41000, 41002)
            calling = asyncio.create_task(
                alice.call(
                    target, make_offer(CAPS, media_a, session_id=1, version=1), destination=proxy
                )
            )
            incoming = await bob.incoming.get()
            assert incoming.source == proxy
            assert incoming.offer is not None
            bob_call = incoming.accept(
                answer_offer(incoming.offer, CAPS, media_b, session_id=2, version=1)
            )
            alice_call = await calling
            # Both sides learnt the proxy as their route set, with loose routing.
            (alice_route,) = alice_call.dialog.route_set
            (bob_route,) = bob_call.dialog.route_set
            assert alice_route.uri.lr and bob_route.uri.lr
            assert alice_route.uri.host_port() == proxy == bob_route.uri.host_port()
            assert bob_call.peer == proxy
            await asyncio.wait_for(bob_call.confirmed.wait(), 5)

            # Bob (the callee) re-INVITEs to T.38 through the proxy.
            t38 = make_offer(CAPS, media_b, session_id=2, version=2, audio=False, t38=True)
            switching = asyncio.create_task(bob_call.reinvite(t38))
            event = await asyncio.wait_for(alice_call.events.get(), 5)
            assert isinstance(event, ReInvite) and event.offer is not None
            assert [r.uri.host_port() for r in event.request.route] == []  # proxy consumed it
            event.accept(answer_offer(event.offer, CAPS, media_a, session_id=1, version=2))
            answer = await switching
            assert answer.media[0].is_t38 and answer.media[0].port == 40002

            await bob_call.bye()
            ended = await asyncio.wait_for(alice_call.events.get(), 5)
            assert isinstance(ended, CallEnded) and ended.reason == "bye"
        finally:
            alice.close()
            bob.close()

    asyncio.run(asyncio.wait_for(main(), 30))
