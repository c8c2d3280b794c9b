"""The user agent core, sans-I/O: two cores (and scripted far ends) on a virtual network.

Time is the network's: a 32 s timer costs nothing, and every run is the same run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import pytest

from faxline.sip.admission import Admission, Bucket
from faxline.sip.agent import UserAgentCore
from faxline.sip.call import Call, CallFailed
from faxline.sip.digest import Credentials
from faxline.sip.events import (
    CallAnswered,
    CallCancelled,
    CallConfirmed,
    CallEnded,
    CallProgress,
    InviteFailed,
    NewCall,
    ReInviteAnswered,
    ReInviteFailed,
    ReInviteReceived,
    RequestAnswered,
    UaEvent,
)
from faxline.sip.headers import Headers
from faxline.sip.message import (
    SipRequest,
    make_response,
    parse_message,
    parse_request,
    parse_response,
)
from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer, make_offer
from faxline.sip.sdp import SessionDescription
from faxline.sip.uri import Address, SipUri
from faxline.testing.network import ScriptedPeer, Sent, VirtualNetwork

A = ("127.0.0.1", 5061)
B = ("127.0.0.1", 5062)
FAR = ("127.0.0.1", 5070)
CAPS = Capabilities()
MEDIA_A = LocalMedia("127.0.0.1", 40000, 40002)
MEDIA_B = LocalMedia("127.0.0.1", 41000, 41002)
E = TypeVar("E")


class World:
    """Alice and Bob's cores on one virtual network, and what each has reported."""

    def __init__(self, bob_admission: Admission | None = None) -> None:
        self.net = VirtualNetwork()
        self.alice = UserAgentCore(A, rng=random.Random(1), user="alice")
        self.bob = UserAgentCore(B, rng=random.Random(2), user="bob", admission=bob_admission)
        self.net.attach(A, self.alice)
        self.net.attach(B, self.bob)
        self.seen: dict[UserAgentCore, list[UaEvent]] = {self.alice: [], self.bob: []}

    @property
    def now(self) -> float:
        return self.net.now

    def events(self, core: UserAgentCore) -> list[UaEvent]:
        while (event := core.next_event()) is not None:
            self.seen[core].append(event)
        return self.seen[core]

    def wait(self, core: UserAgentCore, kind: type[E], timeout: float = 60.0) -> E:
        """Run until ``core`` reports a ``kind`` event it had not reported; take it."""
        found: list[E] = []

        def check() -> bool:
            for event in self.events(core):
                if isinstance(event, kind):
                    self.seen[core].remove(event)
                    found.append(event)
                    return True
            return False

        self.net.run(check, timeout=timeout)
        return found[0]

    def of(self, core: UserAgentCore, kind: type[E]) -> list[E]:
        return [e for e in self.events(core) if isinstance(e, kind)]

    def call(self, **kw: object) -> tuple[Call, Call]:
        """Alice calls Bob, Bob answers at once; both calls, confirmed."""
        offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
        target = SipUri(host=B[0], port=B[1], user="bob")
        self.alice.invite(target, offer, B, self.now, **kw)  # type: ignore[arg-type]
        incoming = self.wait(self.bob, NewCall).incoming
        assert incoming.offer is not None
        self.bob.ring(incoming, self.now)
        answer = answer_offer(incoming.offer, CAPS, MEDIA_B, session_id=2, version=1)
        bob_call = self.bob.accept(incoming, answer, self.now)
        alice_call = self.wait(self.alice, CallAnswered).call
        self.wait(self.bob, CallConfirmed)
        return alice_call, bob_call


def datagrams(net: VirtualNetwork, source: Address, destination: Address) -> list[bytes]:
    return [s.data for s in net.sent(source, destination) if not s.lost]


def methods(net: VirtualNetwork, source: Address, destination: Address) -> list[str]:
    out = []
    for data in datagrams(net, source, destination):
        message = parse_message(data)
        out.append(message.method if isinstance(message, SipRequest) else str(message.status))
    return out


def t38(media: LocalMedia, version: int) -> SessionDescription:
    return make_offer(CAPS, media, session_id=version, version=version, audio=False, t38=True)


def test_call_reinvites_both_ways_and_bye() -> None:
    w = World()
    alice_call, bob_call = w.call()
    assert alice_call.remote_sdp is not None and alice_call.remote_sdp.media[0].port == 41000
    assert methods(w.net, B, A) == ["100", "180", "200"]

    # Alice switches to T.38, as a gateway does after detecting CNG/CED...
    w.alice.reinvite(alice_call, t38(MEDIA_A, 2), w.now)
    reinvite = w.wait(w.bob, ReInviteReceived).reinvite
    assert reinvite.offer is not None and reinvite.offer.media[0].is_t38
    assert reinvite.offer is not None
    w.bob.accept_reinvite(
        reinvite, answer_offer(reinvite.offer, CAPS, MEDIA_B, session_id=2, version=2), w.now
    )
    answered = w.wait(w.alice, ReInviteAnswered)
    assert answered.answer.media[0].is_t38 and answered.answer.media[0].port == 41002
    assert bob_call.remote_sdp is reinvite.offer and alice_call.local_sdp.media[0].is_t38

    # ... and Bob back to audio (the other direction).
    w.bob.reinvite(bob_call, make_offer(CAPS, MEDIA_B, session_id=2, version=3), w.now)
    back = w.wait(w.alice, ReInviteReceived).reinvite
    assert back.offer is not None
    w.alice.accept_reinvite(
        back, answer_offer(back.offer, CAPS, MEDIA_A, session_id=1, version=3), w.now
    )
    assert w.wait(w.bob, ReInviteAnswered).answer.media[0].port == 40000

    w.alice.bye(alice_call, w.now)
    assert w.wait(w.alice, CallEnded).reason == "local"
    assert w.wait(w.bob, CallEnded).reason == "bye"
    assert w.wait(w.alice, RequestAnswered).response.status == 200
    w.net.advance(40)  # every transaction has run out
    assert w.alice.layer.transaction_count == w.bob.layer.transaction_count == 0
    assert len(w.alice.calls) == len(w.bob.calls) == 0


def test_glare_gets_491_both_ways() -> None:
    w = World()
    alice_call, bob_call = w.call()
    w.alice.reinvite(alice_call, t38(MEDIA_A, 2), w.now)
    w.bob.reinvite(bob_call, t38(MEDIA_B, 2), w.now)  # crossing on the wire
    assert w.wait(w.alice, ReInviteFailed).status == 491
    assert w.wait(w.bob, ReInviteFailed).status == 491
    assert not w.of(w.alice, ReInviteReceived) and not w.of(w.bob, ReInviteReceived)
    # Either may try again; now it goes through.
    w.bob.reinvite(bob_call, t38(MEDIA_B, 3), w.now)
    reinvite = w.wait(w.alice, ReInviteReceived).reinvite
    w.alice.reject_reinvite(reinvite, w.now, 488)
    assert w.wait(w.bob, ReInviteFailed).status == 488
    with pytest.raises(CallFailed) as pending:
        w.alice.reinvite(alice_call, t38(MEDIA_A, 3), w.now)
        w.alice.reinvite(alice_call, t38(MEDIA_A, 4), w.now)
    assert pending.value.status == 491


def test_reinvite_while_the_last_is_unanswered_gets_500_and_bye_answers_it_487() -> None:
    w = World()
    alice_call, bob_call = w.call()
    w.alice.reinvite(alice_call, t38(MEDIA_A, 2), w.now)
    w.wait(w.bob, ReInviteReceived)  # Bob does not answer it yet
    with pytest.raises(CallFailed):
        w.bob.reinvite(bob_call, t38(MEDIA_B, 2), w.now)  # one INVITE at a time
    w.bob.bye(bob_call, w.now)
    assert w.wait(w.alice, ReInviteFailed).status == 487
    assert w.wait(w.alice, CallEnded).reason == "bye"


def test_caller_cancels_a_call_that_rings_too_long() -> None:
    w = World()
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    started = w.now
    invite = w.alice.invite(SipUri(host=B[0], port=B[1]), offer, B, w.now, answer_timeout=5)
    incoming = w.wait(w.bob, NewCall).incoming
    w.bob.ring(incoming, w.now, 183, answer_offer(offer, CAPS, MEDIA_B, session_id=2, version=1))
    assert w.wait(w.alice, CallProgress).status == 183
    assert w.wait(w.bob, CallCancelled).incoming is incoming
    assert w.now - started == pytest.approx(5.0 + w.net.latency)
    failed = w.wait(w.alice, InviteFailed)
    assert (failed.invite, failed.status, failed.timed_out) == (invite, 487, True)
    assert methods(w.net, A, B) == ["INVITE", "CANCEL", "ACK"]
    assert methods(w.net, B, A) == ["100", "183", "200", "487"]
    with pytest.raises(CallFailed):
        w.bob.accept(incoming, offer, w.now)


def test_nothing_answers_an_invite_408_without_cancel() -> None:
    w = World()
    w.net.detach(B)
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    w.alice.invite(SipUri(host=B[0], port=B[1]), offer, B, w.now, answer_timeout=60)
    failed = w.wait(w.alice, InviteFailed)
    assert failed.status == 408 and 31 < w.now - 1000 < 33  # Timer B, before the timeout
    assert set(methods(w.net, A, B)) == {"INVITE"} and len(methods(w.net, A, B)) == 7


def test_user_gives_up_before_the_far_end_rings_then_it_rings() -> None:
    """No CANCEL before a provisional answer (RFC 3261 9.1); once it rings, CANCEL."""
    w = World()
    w.net.latency = 0.2
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    invite = w.alice.invite(SipUri(host=B[0], port=B[1]), offer, B, w.now)
    w.alice.cancel(invite, w.now)  # at once: the INVITE has not even arrived
    incoming = w.wait(w.bob, NewCall).incoming
    w.bob.ring(incoming, w.now)
    w.wait(w.bob, CallCancelled)
    w.net.advance(5)
    assert methods(w.net, A, B) == ["INVITE", "CANCEL", "ACK"]  # the ACK is for the 487
    assert not w.of(w.alice, InviteFailed)  # nobody waits for it: no event


def test_a_2xx_after_giving_up_is_acked_and_hung_up() -> None:
    w = World()
    far = ScriptedPeer()
    w.net.attach(FAR, far)
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    w.alice.invite(SipUri(host=FAR[0], port=FAR[1], user="far"), offer, FAR, w.now)
    w.net.run(lambda: bool(far.received))
    invite = parse_request(far.received[0][0])
    w.net.advance(40)
    assert w.wait(w.alice, InviteFailed).status == 408  # silent far end: Timer B
    ok = make_response(
        invite,
        200,
        to_tag="late1",
        contact=Address.parse(f"<sip:far@{FAR[0]}:{FAR[1]}>"),
        body=bytes(answer_offer(offer, CAPS, MEDIA_B, session_id=9, version=1)),
    )
    far.send(bytes(ok), A)
    w.net.advance(0.1)
    after = [m for m in methods(w.net, A, FAR) if m != "INVITE"]
    assert after == ["ACK", "BYE"]
    far.send(bytes(ok), A)  # the 2xx again: our ACK is repeated, no second BYE
    w.net.advance(0.1)
    assert [m for m in methods(w.net, A, FAR) if m != "INVITE"] == ["ACK", "BYE", "ACK"]
    bye = parse_request(datagrams(w.net, A, FAR)[-2])
    far.send(bytes(make_response(bye, 200)), A)
    w.net.advance(40)
    assert len(w.alice.calls) == 0 and not w.of(w.alice, CallEnded)


def test_retransmitted_2xx_is_acked_again_identically() -> None:
    w = World()
    far = ScriptedPeer()
    w.net.attach(FAR, far)
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    w.alice.invite(SipUri(host=FAR[0], port=FAR[1], user="far"), offer, FAR, w.now)
    w.net.run(lambda: bool(far.received))
    invite = parse_request(far.received[0][0])
    contact = Address.parse(f"<sip:far@{FAR[0]}:{FAR[1]}>")
    body = bytes(answer_offer(offer, CAPS, MEDIA_B, session_id=9, version=1))
    ok = make_response(invite, 200, to_tag="p1", contact=contact, body=body)
    far.send(bytes(ok), A)
    call = w.wait(w.alice, CallAnswered).call
    far.send(bytes(ok), A)  # as if the first ACK had been lost
    w.net.advance(0.5)
    first, second = (d for d in datagrams(w.net, A, FAR) if d.startswith(b"ACK"))
    assert first == second and call.dialog.remote_tag == "p1"
    assert len(w.of(w.alice, CallAnswered)) == 0  # one call, answered once


def test_our_2xx_never_acked_ends_the_call_with_bye() -> None:
    w = World()
    w.net.lose = lambda sent: sent.data.startswith(b"ACK")
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    w.alice.invite(SipUri(host=B[0], port=B[1]), offer, B, w.now)
    incoming = w.wait(w.bob, NewCall).incoming
    w.bob.accept(incoming, answer_offer(offer, CAPS, MEDIA_B, session_id=2, version=1), w.now)
    assert w.wait(w.bob, CallEnded).reason == "no ack"
    assert 31 < w.now - 1000 < 33  # Timer L: 64 * T1
    assert w.wait(w.alice, CallEnded).reason == "bye"
    assert methods(w.net, B, A).count("200") >= 7  # the 2xx was retransmitted meanwhile


def test_late_offer_gets_its_answer_from_the_ack() -> None:
    w = World()
    far = ScriptedPeer()
    w.net.attach(FAR, far)
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {FAR[0]}:{FAR[1]};branch=z9hG4bK-late")
    headers.add("From", f"<sip:late@{FAR[0]}:{FAR[1]}>;tag=l1")
    headers.add("To", "<sip:bob@127.0.0.1>")
    headers.add("Call-ID", "late-1")
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", f"<sip:late@{FAR[0]}:{FAR[1]}>")
    invite = SipRequest("INVITE", SipUri(host=B[0], port=B[1], user="bob"), headers)
    far.send(bytes(invite), B)
    incoming = w.wait(w.bob, NewCall).incoming
    assert incoming.offer is None
    ours = make_offer(CAPS, MEDIA_B, session_id=2, version=1)
    call = w.bob.accept(incoming, ours, w.now)
    w.net.advance(0.01)
    ok = parse_response(far.received[-1][0])
    assert ok.status == 200 and SessionDescription.parse(ok.body).media[0].port == 41000
    ack_headers = Headers()
    ack_headers.add("Via", f"SIP/2.0/UDP {FAR[0]}:{FAR[1]};branch=z9hG4bK-late-ack")
    for name in ("From", "Call-ID"):
        ack_headers.add(name, headers.get(name) or "")
    ack_headers.add("To", ok.headers.get("To") or "")
    ack_headers.add("CSeq", "1 ACK")
    ack_headers.add("Content-Type", "application/sdp")
    answer = answer_offer(ours, CAPS, MEDIA_A, session_id=1, version=1)
    far.send(bytes(SipRequest("ACK", ok.contacts[0].uri, ack_headers, bytes(answer))), B)
    assert w.wait(w.bob, CallConfirmed).call is call
    assert call.remote_sdp is not None and call.remote_sdp.media[0].port == 40000


def request_from(
    peer: Address,
    method: str,
    *,
    to_tag: str = "",
    body: bytes = b"",
    content_type: str = "application/sdp",
    branch: str = "z9hG4bK-x",
    call_id: str = "probe",
) -> SipRequest:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {peer[0]}:{peer[1]};branch={branch}")
    headers.add("From", f"<sip:probe@{peer[0]}>;tag=p")
    headers.add("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"1 {method}")
    headers.add("Contact", f"<sip:probe@{peer[0]}:{peer[1]}>")
    if body:
        headers.add("Content-Type", content_type)
    return SipRequest(method, SipUri(host=B[0], port=B[1], user="bob"), headers, body)


@pytest.mark.parametrize(
    ("method", "kw", "status"),
    [
        ("OPTIONS", {}, 200),
        ("MESSAGE", {}, 405),
        ("BYE", {"to_tag": "nope"}, 481),
        ("INVITE", {"body": b"hello", "content_type": "text/plain"}, 415),
        ("INVITE", {"body": b"v=0\r\nbroken"}, 400),
    ],
)
def test_what_the_core_answers_by_itself(method: str, kw: dict[str, object], status: int) -> None:
    w = World()
    far = ScriptedPeer()
    w.net.attach(FAR, far)
    far.send(bytes(request_from(FAR, method, **kw)), B)  # type: ignore[arg-type]
    w.net.advance(1)
    statuses = [parse_response(data).status for data, _ in far.received]
    assert statuses[-1] == status
    assert not w.of(w.bob, NewCall)


def test_digest_challenge_is_answered_once() -> None:
    w = World()
    offer = make_offer(CAPS, MEDIA_A, session_id=1, version=1)
    target = SipUri(host=B[0], port=B[1], user="bob")
    credentials = Credentials("alice", "wonderland")
    w.alice.invite(target, offer, B, w.now, credentials=credentials)
    first = w.wait(w.bob, NewCall).incoming
    challenge = 'Digest realm="bob", nonce="n1", qop="auth"'
    w.bob.reject(first, 407, w.now, extra_headers=[("Proxy-Authenticate", challenge)])
    second = w.wait(w.bob, NewCall).incoming
    assert second.request.cseq.seq == 2 and second.request.call_id == first.request.call_id
    assert 'username="alice"' in (second.request.headers.get("Proxy-Authorization") or "")
    w.bob.reject(second, 407, w.now, extra_headers=[("Proxy-Authenticate", challenge)])
    assert w.wait(w.alice, InviteFailed).status == 407  # no second try


def test_register_challenge_and_refresh_reuse_the_registration() -> None:
    w = World()
    registrar = ScriptedPeer()
    w.net.attach(FAR, registrar)
    uri = SipUri(host=FAR[0], port=FAR[1])
    w.alice.register(uri, FAR, w.now, credentials=Credentials("alice", "pw"), expires=600)
    w.net.advance(0.01)
    first = parse_request(registrar.received[-1][0])
    challenge = 'Digest realm="reg", nonce="abc", qop="auth"'
    registrar.send(
        bytes(
            make_response(first, 401, to_tag="r", extra_headers=[("WWW-Authenticate", challenge)])
        ),
        A,
    )
    w.net.advance(0.01)
    second = parse_request(registrar.received[-1][0])
    assert second.cseq.seq == 2 and second.top_via.branch != first.top_via.branch
    registrar.send(bytes(make_response(second, 200, to_tag="r")), A)
    assert w.wait(w.alice, RequestAnswered).response.status == 200
    w.alice.register(uri, FAR, w.now, expires=600)  # the refresh
    w.net.advance(0.01)
    third = parse_request(registrar.received[-1][0])
    assert (third.call_id, third.cseq.seq) == (first.call_id, 3)
    assert third.headers.get("Authorization") == second.headers.get("Authorization")


def test_lost_requests_and_answers_are_retransmitted() -> None:
    """Every second datagram of the call set-up is lost, both ways: the call still comes up."""
    w = World()
    count = iter(range(1_000_000))
    w.net.lose = lambda sent: next(count) % 2 == 0 and w.now < 1010
    alice_call, bob_call = w.call()
    w.alice.bye(alice_call, w.now)
    assert w.wait(w.bob, CallEnded).call is bob_call
    assert sum(s.lost for s in w.net.log) >= 3


# -- who gets an answer (issue 7 point 16) --------------------------------------------------

STRANGER = ("192.0.2.66", 5060)
TRUNK = ("127.0.0.1", 5061)  # Alice


def trusted(ip: str) -> bool:
    return ip == TRUNK[0]


def test_a_strangers_invite_gets_one_403_and_nothing_more() -> None:
    w = World(bob_admission=Admission(trusted, refusal=(403, "Forbidden (not a trunk)")))
    stranger = ScriptedPeer()
    w.net.attach(STRANGER, stranger)
    body = bytes(make_offer(CAPS, MEDIA_A, session_id=1, version=1))
    invite = request_from(STRANGER, "INVITE", body=body)
    stranger.send(bytes(invite), B)
    w.net.advance(40)
    ((data, _),) = stranger.received  # no 100 Trying, no retransmission over 40 s
    refusal = parse_response(data)
    assert (refusal.status, refusal.reason) == (403, "Forbidden (not a trunk)")
    assert refusal.to.tag is not None
    assert w.bob.layer.transaction_count == 0 and not w.of(w.bob, NewCall)
    # Its retransmission gets the same stateless answer (same To tag), once.
    stranger.send(bytes(invite), B)
    w.net.advance(1)
    assert parse_response(stranger.received[1][0]).to.tag == refusal.to.tag
    # A trusted trunk still calls in.
    alice_call, _ = w.call()
    assert alice_call.remote_sdp is not None


def test_a_flood_from_one_source_gets_answers_at_a_bounded_rate() -> None:
    stranger_bucket = Bucket(rate=1.0, burst=5.0)
    admission = Admission(trusted, stranger_bucket=stranger_bucket)
    w = World(bob_admission=admission)
    stranger = ScriptedPeer()
    w.net.attach(STRANGER, stranger)
    body = bytes(make_offer(CAPS, MEDIA_A, session_id=1, version=1))
    for n in range(100):  # 100 INVITEs a second for 10 s, each a new transaction
        for k in range(10):
            invite = request_from(STRANGER, "INVITE", body=body, branch=f"z9hG4bK-{n}-{k}")
            stranger.send(bytes(invite), B)
        w.net.advance(0.1)
    answers = len(stranger.received)
    assert 5 + 9 <= answers <= 5 + 11  # the burst, then one a second
    assert admission.limiter.refused == 1000 - answers
    # Meanwhile the trunk's calls go through: its bucket is its own.
    alice_call, bob_call = w.call()
    w.bob.bye(bob_call, w.now)
    assert w.wait(w.alice, CallEnded).call is alice_call


def test_in_dialog_requests_are_never_screened() -> None:
    """A far end whose BYE comes from an address no trunk lists is still heard."""
    nobody = Admission(lambda ip: False, stranger_bucket=Bucket(rate=1.0, burst=1.0))
    w = World()
    alice_call, bob_call = w.call()
    w.bob.layer.admission = nobody  # from now on Alice is a stranger to Bob
    for version in (2, 3, 4):
        w.alice.reinvite(alice_call, t38(MEDIA_A, version), w.now)
        reinvite = w.wait(w.bob, ReInviteReceived).reinvite
        w.bob.reject_reinvite(reinvite, w.now)
        w.wait(w.alice, ReInviteFailed)
    w.alice.bye(alice_call, w.now)
    assert w.wait(w.bob, CallEnded).call is bob_call


def test_malformed_requests_get_their_400_within_the_rate() -> None:
    admission = Admission(trusted, stranger_bucket=Bucket(rate=1.0, burst=2.0))
    w = World(bob_admission=admission)
    stranger = ScriptedPeer()
    w.net.attach(STRANGER, stranger)
    broken = bytes(request_from(STRANGER, "OPTIONS")).replace(b"CSeq: 1 OPTIONS", b"CSeq: x")
    for _ in range(10):
        stranger.send(broken, B)
    w.net.advance(0.5)
    # The 400 echoes the broken CSeq, so it is read by its status line only.
    assert [d.split(b"\r\n")[0] for d, _ in stranger.received] == [
        b"SIP/2.0 400 Bad Request (bad CSeq 'x')"
    ] * 2


def sent_to(net: VirtualNetwork, destination: Address) -> Callable[[Sent], bool]:
    return lambda sent: sent.destination == destination
