"""The asyncio user agent on 127.0.0.1, over real UDP sockets.

What the user agent decides is tested on the sans-I/O core (test_agent.py); these tests
run the shell: its socket, its timer, the awaitables, and what a real socket sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

import pytest

from faxline.sip.admission import Admission, Bucket
from faxline.sip.digest import Credentials
from faxline.sip.errors import NotAcceptable
from faxline.sip.headers import Headers
from faxline.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
    parse_request,
    parse_response,
)
from faxline.sip.negotiation import (
    Capabilities,
    LocalMedia,
    answer_offer,
    make_offer,
    negotiated_media,
)
from faxline.sip.sdp import SessionDescription
from faxline.sip.transaction import Timers
from faxline.sip.ua import CallEnded, CallFailed, IncomingCall, ReInvite, UserAgent
from faxline.sip.uri import Address, SipUri

CAPS = Capabilities()
MEDIA_A = LocalMedia("127.0.0.1", 40000, 40002)
MEDIA_B = LocalMedia("127.0.0.1", 41000, 41002)


def run(test: Callable[[UserAgent, UserAgent], Awaitable[None]]) -> None:
    async def main() -> None:
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
        try:
            await asyncio.wait_for(test(alice, bob), 20)
        finally:
            alice.close()
            bob.close()

    asyncio.run(main())


def uri_of(ua: UserAgent) -> SipUri:
    host, port = ua.address
    return SipUri(host=host, port=port, user=ua.user)


def answer(incoming: IncomingCall | ReInvite, version: int) -> SessionDescription:
    assert incoming.offer is not None
    return answer_offer(incoming.offer, CAPS, MEDIA_B, session_id=9, version=version)


def test_call_reinvite_to_t38_and_bye() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
        calling = asyncio.create_task(alice.call(uri_of(bob), offer))
        incoming = await bob.incoming.get()
        assert incoming.offer is not None and incoming.offer.media[0].port == 40000
        incoming.ringing()
        bob_call = incoming.accept(answer(incoming, 1))
        alice_call = await calling
        await asyncio.wait_for(bob_call.confirmed.wait(), 5)
        assert alice_call.remote_sdp is not None
        (audio,) = negotiated_media(offer, alice_call.remote_sdp, local_is_offer=True)
        assert audio.kind == "audio" and audio.remote_port == 41000 and audio.payload_type == 0

        # Alice switches to T.38, as a fax gateway does after detecting CNG/CED.
        t38_offer = make_offer(CAPS, MEDIA_A, session_id=1, version=2, audio=False, t38=True)
        switching = asyncio.create_task(alice_call.reinvite(t38_offer))
        reinvite = await bob_call.events.get()
        assert isinstance(reinvite, ReInvite) and reinvite.offer is not None
        assert reinvite.offer.media[0].is_t38
        reinvite.accept(answer(reinvite, 2))
        t38_answer = await switching
        (image,) = negotiated_media(t38_offer, t38_answer, local_is_offer=True)
        assert image.kind == "image" and image.remote_port == 41002
        assert image.t38 is not None and image.t38.udp_ec == "t38UDPRedundancy"
        assert alice_call.dialog.local_seq == 2

        # And Bob re-INVITEs back to audio (re-INVITE in the other direction).
        back = asyncio.create_task(
            bob_call.reinvite(make_offer(CAPS, MEDIA_B, session_id=9, version=3))
        )
        event = await alice_call.events.get()
        assert isinstance(event, ReInvite) and event.offer is not None
        event.accept(answer_offer(event.offer, CAPS, MEDIA_A, session_id=1, version=3))
        assert (await back).media[0].port == 40000

        await alice_call.bye()
        ended = await asyncio.wait_for(bob_call.events.get(), 5)
        assert isinstance(ended, CallEnded) and ended.reason == "bye"
        assert alice_call.end_reason == "local" and bob_call.ended.is_set()

    run(scenario)


def test_broken_sdp_gets_400_and_unacceptable_media_488() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        broken = SessionDescription.parse(bytes(make_offer(CAPS, MEDIA_A, session_id=1, version=1)))
        broken.media[0].formats = []  # serialises to an m= line without formats
        with pytest.raises(CallFailed) as failure:
            await alice.call(uri_of(bob), broken)
        assert failure.value.status == 400 and "SDP" in failure.value.reason
        assert bob.incoming.empty()

        video = SessionDescription.parse(
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        )

        async def refuse() -> None:
            incoming = await bob.incoming.get()
            with pytest.raises(NotAcceptable):
                answer(incoming, 1)
            incoming.reject(488)

        refusing = asyncio.create_task(refuse())
        with pytest.raises(CallFailed) as failure:
            await alice.call(uri_of(bob), video)
        assert failure.value.status == 488
        await refusing

    run(scenario)


def test_caller_cancels_a_ringing_call() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
        calling = asyncio.create_task(alice.call(uri_of(bob), offer, timeout=0.3))
        incoming = await bob.incoming.get()
        incoming.ringing(183, answer(incoming, 1))  # early media, as gateways do
        with pytest.raises(CallFailed) as failure:
            await calling
        assert failure.value.status == 487 and failure.value.timed_out
        assert incoming.cancelled.is_set()
        with pytest.raises(CallFailed):
            incoming.accept(answer(incoming, 1))

    run(scenario)


def test_a_cancelled_call_task_cancels_the_ringing_call() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
        calling = asyncio.create_task(alice.call(uri_of(bob), offer, timeout=30))
        incoming = await bob.incoming.get()
        incoming.ringing()
        # Whether or not the 180 has reached Alice yet: she CANCELs once it has.
        calling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await calling
        await asyncio.wait_for(incoming.cancelled.wait(), 5)

    run(scenario)


def test_options_and_stray_requests() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        try:
            port = sock.getsockname()[1]

            async def ask(method: str, to_tag: str = "") -> int:
                headers = Headers()
                headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{method}")
                headers.add("From", "<sip:probe@127.0.0.1>;tag=p")
                headers.add("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""))
                headers.add("Call-ID", f"probe-{method}")
                headers.add("CSeq", f"1 {method}")
                request = SipRequest(method, uri_of(bob), headers)
                await loop.sock_sendto(sock, bytes(request), bob.address)
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
                return parse_response(data).status

            assert await ask("OPTIONS") == 200
            assert await ask("MESSAGE") == 405
            assert await ask("BYE", to_tag="nope") == 481
            await loop.sock_sendto(sock, b"INVITE garbage\r\n\r\n", bob.address)
            await loop.sock_sendto(sock, b"\x00\x01", bob.address)
            assert await ask("OPTIONS") == 200  # still listening
        finally:
            sock.close()

    run(scenario)


class RawPeer:
    """A bare UDP socket that speaks SIP by hand, to script what a real UA would not do."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    async def receive(self) -> tuple[SipRequest, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        data, source = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), 5)
        return parse_request(data), source

    async def send(self, message: SipResponse, destination: tuple[str, int]) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, bytes(message), destination)

    def close(self) -> None:
        self.sock.close()


def test_register_with_digest_challenge() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        registrar = RawPeer()
        try:
            host, port = registrar.address
            registering = asyncio.create_task(
                alice.register(
                    SipUri(host=host, port=port),
                    credentials=Credentials("alice", "pw"),
                    expires=600,
                )
            )
            first, source = await registrar.receive()
            assert first.method == "REGISTER" and first.headers.get("Expires") == "600"
            assert first.to.uri.user == "alice" and first.contacts[0].uri.port == alice.address[1]
            challenge = 'Digest realm="reg", nonce="abc", algorithm=MD5, qop="auth"'
            await registrar.send(
                make_response(
                    first, 401, to_tag="r", extra_headers=[("WWW-Authenticate", challenge)]
                ),
                source,
            )
            second, source = await registrar.receive()
            assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
            assert second.top_via.branch != first.top_via.branch
            assert 'realm="reg"' in (second.headers.get("Authorization") or "")
            contact = Address.parse(second.headers.get("Contact") or "")
            contact.params["expires"] = "120"
            await registrar.send(make_response(second, 200, to_tag="r", contact=contact), source)
            assert await registering == 120
        finally:
            registrar.close()

    run(scenario)


def test_a_stranger_gets_one_403_and_a_flood_is_answered_at_a_bounded_rate() -> None:
    """127.0.0.2 is not a trunk: one stateless 403 per INVITE, never repeated, and no more
    answers than its bucket holds; 127.0.0.1 (a trunk) still calls in."""

    async def main() -> None:
        admission = Admission(
            lambda ip: ip == "127.0.0.1", stranger_bucket=Bucket(rate=1.0, burst=3.0)
        )
        # A short T1: a stateful 403 would be repeated within 50 ms.
        bob = await UserAgent.listen(
            "127.0.0.1", 0, user="bob", admission=admission, timers=Timers(t1=0.01)
        )
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        loop = asyncio.get_running_loop()
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.2", 0))
        stranger.setblocking(False)
        try:
            host, port = stranger.getsockname()
            offer = bytes(make_offer(CAPS, MEDIA_A, session_id=1, version=1))

            def invite(branch: str) -> bytes:
                headers = Headers()
                headers.add("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{branch}")
                headers.add("From", f"<sip:spoof@{host}>;tag=s")
                headers.add("To", "<sip:bob@127.0.0.1>")
                headers.add("Call-ID", f"spoof-{branch}")
                headers.add("CSeq", "1 INVITE")
                headers.add("Contact", f"<sip:spoof@{host}:{port}>")
                headers.add("Content-Type", "application/sdp")
                return bytes(SipRequest("INVITE", uri_of(bob), headers, offer))

            await loop.sock_sendto(stranger, invite("one"), bob.address)
            data = await asyncio.wait_for(loop.sock_recv(stranger, 65535), 5)
            assert parse_response(data).status == 403
            # Nothing more comes for that INVITE: no 100, no retransmission (a stateful 403
            # would come again 10, 30, 70 ms later).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(stranger, 65535), 0.3)
            assert bob.core.layer.transaction_count == 0 and bob.incoming.empty()

            for n in range(50):  # a flood of distinct INVITEs
                await loop.sock_sendto(stranger, invite(f"flood-{n}"), bob.address)
            answers = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    await asyncio.wait_for(loop.sock_recv(stranger, 65535), 0.3)
                    answers += 1
            assert 1 <= answers <= 3  # what was left of the burst (and a refill at most)

            # The trunk's call goes through.
            calling = asyncio.create_task(
                alice.call(uri_of(bob), make_offer(CAPS, MEDIA_A, session_id=1, version=1))
            )
            incoming = await asyncio.wait_for(bob.incoming.get(), 5)
            call = incoming.accept(answer(incoming, 1))
            await (await calling).bye()
            ended = await asyncio.wait_for(call.events.get(), 5)
            assert isinstance(ended, CallEnded)
        finally:
            stranger.close()
            alice.close()
            bob.close()

    asyncio.run(asyncio.wait_for(main(), 20))
