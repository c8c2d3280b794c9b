"""Two user agents on 127.0.0.1 talking over real UDP sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from faxline.sip.digest import Credentials, DigestChallenge, digest_response
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
from faxline.sip.ua import CallEnded, CallFailed, IncomingCall, IncomingReInvite, UserAgent
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


def answer(incoming: IncomingCall | IncomingReInvite, version: int) -> SessionDescription:
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
        assert isinstance(reinvite, IncomingReInvite) and reinvite.offer is not None
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
        assert isinstance(event, IncomingReInvite) and event.offer is not None
        event.accept(answer_offer(event.offer, CAPS, MEDIA_A, session_id=1, version=3))
        assert (await back).media[0].port == 40000

        await alice_call.bye()
        assert await asyncio.wait_for(bob_call.events.get(), 5) == CallEnded("bye")
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
        assert failure.value.status == 487
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
        await asyncio.sleep(0.2)  # the 180 reaches alice
        calling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await calling
        await asyncio.wait_for(incoming.cancelled.wait(), 5)

    run(scenario)


def test_digest_challenge_is_answered() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
        calling = asyncio.create_task(
            alice.call(uri_of(bob), offer, credentials=Credentials("alice", "wonderland"))
        )
        first = await bob.incoming.get()
        first.reject(
            407,
            extra_headers=[("Proxy-Authenticate", 'Digest realm="bob", nonce="n1", qop="auth"')],
        )
        second = await bob.incoming.get()
        assert second.request.cseq.seq == 2 and second.request.call_id == first.request.call_id
        value = second.request.headers.get("Proxy-Authorization") or ""
        fields = dict(
            part.strip().split("=", 1) for part in value.removeprefix("Digest ").split(",")
        )
        expected = digest_response(
            username="alice",
            password="wonderland",
            realm="bob",
            nonce="n1",
            method="INVITE",
            uri=str(second.request.uri),
            qop="auth",
            nc=1,
            cnonce=fields["cnonce"].strip('"'),
        )
        assert fields["response"] == f'"{expected}"'
        assert DigestChallenge.parse('Digest realm="bob", nonce="n1"').realm == "bob"
        second.accept(answer(second, 1))
        call = await calling
        await call.bye()

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


def test_retransmitted_2xx_is_acked_again() -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> None:
        peer = RawPeer()
        try:
            host, port = peer.address
            offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
            calling = asyncio.create_task(alice.call(SipUri(host=host, port=port, user="p"), offer))
            invite, source = await peer.receive()
            answer_sdp = answer_offer(
                SessionDescription.parse(invite.body), CAPS, MEDIA_B, session_id=3, version=1
            )
            contact = Address(SipUri(host=host, port=port, user="p"))
            ok = make_response(invite, 200, to_tag="p1", contact=contact, body=bytes(answer_sdp))
            await peer.send(ok, source)
            call = await calling
            first_ack, _ = await peer.receive()
            await peer.send(ok, source)  # as if the first ACK had been lost
            second_ack, _ = await peer.receive()
            assert first_ack.method == second_ack.method == "ACK"
            assert bytes(first_ack) == bytes(second_ack)
            assert call.dialog.remote_tag == "p1"
        finally:
            peer.close()

    run(scenario)


def test_a_2xx_after_giving_up_is_acked_and_hung_up() -> None:
    """A far end that answers only after we gave up is not left in a call nobody holds."""

    async def main() -> None:
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        far.bind(("127.0.0.1", 0))
        far.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            host, port = far.getsockname()
            offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
            calling = asyncio.create_task(
                alice.call(SipUri(host=host, port=port, user="bob"), offer, timeout=0.3)
            )
            data, source = await loop.sock_recvfrom(far, 65535)
            invite = parse_request(data)
            with pytest.raises(CallFailed) as failure:
                await calling  # silent far end: no provisional answer, so no CANCEL
            assert failure.value.status == 408
            late = make_response(
                invite,
                200,
                to_tag="late1",
                contact=Address.parse(f"<sip:bob@{host}:{port}>"),
                body=bytes(answer_offer(offer, CAPS, MEDIA_B, session_id=9, version=1)),
                content_type="application/sdp",
            )
            far.sendto(bytes(late), source)
            methods = []
            while "BYE" not in methods:
                data, _ = await asyncio.wait_for(loop.sock_recvfrom(far, 65535), 5)
                message = parse_request(data) if not data.startswith(b"SIP/2.0") else None
                if message is not None:
                    methods.append(message.method)
            assert methods[methods.index("ACK") :][:2] == ["ACK", "BYE"]
        finally:
            alice.close()
            far.close()

    asyncio.run(main())
