from __future__ import annotations

import pytest

from faxline.sip.headers import Headers
from faxline.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
    parse_request,
    parse_response,
)
from faxline.sip.transaction import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Event,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    State,
    StrayResponse,
    TransactionTimeout,
    TransportError,
    make_cancel,
)
from faxline.sip.transaction_layer import TransactionLayer
from faxline.sip.uri import SipUri

UAC = ("192.0.2.1", 5060)
UAS = ("192.0.2.2", 5070)


def request(
    method: str, branch: str = "z9hG4bK-1", *, cseq: int = 1, rport: bool = False
) -> SipRequest:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}" + (";rport" if rport else ""))
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:fax@192.0.2.1>;tag=uac-tag")
    headers.add("To", "<sip:peer@192.0.2.2>")
    headers.add("Call-ID", "call-1@192.0.2.1")
    headers.add("CSeq", f"{cseq} {method}")
    return SipRequest(method, SipUri.parse("sip:peer@192.0.2.2:5070"), headers)


def events(layer: TransactionLayer) -> list[Event]:
    out = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def sent(layer: TransactionLayer) -> list[bytes]:
    return [data for data, _ in layer.datagrams_to_send()]


def run_until(layer: TransactionLayer, end: float) -> list[float]:
    """Fire timers up to ``end``; return the times at which something was sent."""
    times = []
    while (deadline := layer.get_timer()) is not None and deadline <= end:
        layer.handle_timer(deadline)
        if layer.datagrams_to_send():
            times.append(deadline)
    return times


def test_client_invite_retransmits_with_timer_a_and_times_out_with_b() -> None:
    layer = TransactionLayer()
    transaction = layer.send_request(request("INVITE"), UAS, now=0.0)
    assert len(sent(layer)) == 1
    assert run_until(layer, 40.0) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert events(layer) == [TransactionTimeout(transaction)]
    assert transaction.state is State.TERMINATED and layer.transaction_count == 0


def test_client_invite_error_response_is_acked_and_absorbed() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    invite.headers.add("Route", "<sip:proxy.example;lr>")
    transaction = layer.send_request(invite, UAS, now=0.0)
    sent(layer)
    ringing = make_response(invite, 180, to_tag="uas-tag")
    layer.receive_message(ringing, UAS, now=0.2)
    assert run_until(layer, 10.0) == []  # 1xx stops Timer A and B
    busy = make_response(invite, 486, to_tag="uas-tag")
    layer.receive_datagram(bytes(busy), UAS, now=10.0)
    (ack_data,) = sent(layer)
    ack = parse_request(ack_data)
    assert ack.method == "ACK" and ack.cseq.seq == 1 and ack.to.tag == "uas-tag"
    assert ack.top_via.branch == "z9hG4bK-1" and ack.uri == invite.uri
    assert ack.headers.get("Route") == "<sip:proxy.example;lr>"
    layer.receive_datagram(bytes(busy), UAS, now=11.0)
    assert sent(layer) == [ack_data]
    assert [type(e) for e in events(layer)] == [ResponseReceived, ResponseReceived]
    assert transaction.state is State.COMPLETED
    run_until(layer, 10.0 + 32.0)
    assert transaction.terminated


def test_client_invite_passes_every_2xx_until_timer_m() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    transaction = layer.send_request(invite, UAS, now=0.0)
    ok = make_response(invite, 200, to_tag="uas-tag")
    layer.receive_message(ok, UAS, now=0.1)
    layer.receive_message(ok, UAS, now=0.6)
    assert [e.response.status for e in events(layer) if isinstance(e, ResponseReceived)] == [
        200,
        200,
    ]
    assert transaction.state is State.ACCEPTED
    run_until(layer, 0.1 + 32.0)
    assert transaction.terminated
    layer.receive_message(ok, UAS, now=40.0)
    assert events(layer) == [StrayResponse(ok, UAS)]


def test_client_non_invite_timer_e_caps_at_t2() -> None:
    layer = TransactionLayer()
    transaction = layer.send_request(request("OPTIONS"), UAS, now=0.0)
    sent(layer)
    times = run_until(layer, 40.0)
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert events(layer) == [TransactionTimeout(transaction)]


def test_client_non_invite_proceeding_and_completed() -> None:
    layer = TransactionLayer()
    bye = request("BYE", cseq=2)
    transaction = layer.send_request(bye, UAS, now=0.0)
    layer.receive_message(make_response(bye, 100), UAS, now=0.1)
    assert run_until(layer, 10.0)[:2] == [0.5, 4.5]  # Proceeding retransmits every T2
    layer.receive_message(make_response(bye, 200), UAS, now=10.0)
    layer.receive_message(make_response(bye, 200), UAS, now=10.1)
    assert [e.response.status for e in events(layer) if isinstance(e, ResponseReceived)] == [
        100,
        200,
    ]
    assert transaction.state is State.COMPLETED
    run_until(layer, 15.0)
    assert transaction.terminated


def receive(layer: TransactionLayer, message: SipRequest, now: float) -> ServerTransaction:
    layer.receive_datagram(bytes(message), UAC, now)
    (event,) = [e for e in events(layer) if isinstance(e, RequestReceived)]
    return event.transaction


def test_server_invite_error_response_retransmitted_until_ack() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    transaction = receive(layer, invite, now=0.0)
    (trying,) = sent(layer)
    assert parse_response(trying).status == 100
    layer.receive_datagram(bytes(invite), UAC, now=0.3)
    assert sent(layer) == [trying]  # a retransmitted INVITE gets the last response again
    assert events(layer) == []
    layer.send_response(transaction, make_response(transaction.request, 486, to_tag="t"), now=1.0)
    assert len(sent(layer)) == 1
    assert run_until(layer, 9.0) == [1.5, 2.5, 4.5, 8.5]
    ack = parse_request(
        bytes(invite).replace(b"INVITE sip", b"ACK sip").replace(b"1 INVITE", b"1 ACK")
    )
    layer.receive_message(ack, UAC, now=9.0)
    assert transaction.state is State.CONFIRMED
    assert events(layer) == []  # the ACK for an error response stays in the transaction
    assert run_until(layer, 14.0) == []  # Timer I (T4) ends it
    assert transaction.terminated


def test_server_invite_timer_h() -> None:
    layer = TransactionLayer()
    transaction = receive(layer, request("INVITE"), now=0.0)
    layer.send_response(transaction, make_response(transaction.request, 480, to_tag="t"), now=0.0)
    run_until(layer, 40.0)
    assert events(layer) == [TransactionTimeout(transaction)]


def test_server_invite_2xx_retransmitted_until_the_dialog_ack() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    transaction = receive(layer, invite, now=0.0)
    sent(layer)
    ok = make_response(transaction.request, 200, to_tag="uas-tag")
    layer.send_response(transaction, ok, now=1.0)
    assert len(sent(layer)) == 1
    assert run_until(layer, 5.0) == [1.5, 2.5, 4.5]
    layer.receive_datagram(bytes(invite), UAC, now=5.0)  # absorbed in Accepted
    assert sent(layer) == [] and events(layer) == []
    ack = request("ACK", "z9hG4bK-ack")
    ack.headers.set("To", "<sip:peer@192.0.2.2>;tag=uas-tag")
    layer.receive_message(ack, UAC, now=5.1)
    (event,) = events(layer)
    assert isinstance(event, AckReceived) and event.request.method == "ACK"
    assert run_until(layer, 40.0) == []
    assert transaction.terminated and events(layer) == []


def test_server_invite_2xx_without_ack() -> None:
    layer = TransactionLayer()
    transaction = receive(layer, request("INVITE"), now=0.0)
    layer.send_response(transaction, make_response(transaction.request, 200, to_tag="t"), now=0.0)
    times = run_until(layer, 40.0)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert events(layer) == [AckTimeout(transaction)]  # type: ignore[arg-type]


def test_server_non_invite() -> None:
    layer = TransactionLayer()
    bye = request("BYE", cseq=2)
    transaction = receive(layer, bye, now=0.0)
    assert sent(layer) == []  # no automatic 100 for non-INVITE
    layer.receive_datagram(bytes(bye), UAC, now=0.1)
    assert sent(layer) == [] and events(layer) == []
    layer.send_response(transaction, make_response(transaction.request, 200), now=0.2)
    (ok,) = sent(layer)
    layer.receive_datagram(bytes(bye), UAC, now=0.7)
    assert sent(layer) == [ok]
    with pytest.raises(ValueError, match="state"):
        layer.send_response(transaction, make_response(transaction.request, 500), now=0.8)
    run_until(layer, 33.0)
    assert transaction.terminated


def test_cancel_matches_the_pending_invite() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    invite_tx = receive(layer, invite, now=0.0)
    layer.send_response(invite_tx, make_response(invite_tx.request, 180, to_tag="t"), now=0.0)
    sent(layer)
    layer.receive_datagram(bytes(make_cancel(invite)), UAC, now=1.0)
    (ok,) = [parse_response(d) for d in sent(layer)]
    assert ok.status == 200 and ok.cseq.method == "CANCEL" and ok.to.tag == "t"
    (event,) = events(layer)
    assert isinstance(event, CancelReceived) and event.transaction is invite_tx
    layer.send_response(invite_tx, make_response(invite_tx.request, 487, to_tag="t"), now=1.0)
    assert parse_response(sent(layer)[0]).status == 487


def test_cancel_without_invite_gets_481() -> None:
    layer = TransactionLayer()
    layer.receive_datagram(bytes(make_cancel(request("INVITE", "z9hG4bK-gone"))), UAC, now=0.0)
    (data,) = sent(layer)
    assert parse_response(data).status == 481
    assert events(layer) == []


def test_rport_and_received_decide_where_responses_go() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", rport=True)
    layer.receive_datagram(bytes(invite), ("203.0.113.9", 40123), now=0.0)
    ((data, destination),) = layer.datagrams_to_send()
    assert destination == ("203.0.113.9", 40123)
    via = parse_response(data).top_via
    assert via.params["rport"] == "40123" and via.params["received"] == "203.0.113.9"
    layer.receive_datagram(bytes(request("OPTIONS", "z9hG4bK-2")), ("203.0.113.9", 40123), 0.0)
    (event,) = [e for e in events(layer) if isinstance(e, RequestReceived)][-1:]
    assert event.transaction.peer == ("203.0.113.9", 5060)


def test_malformed_request_gets_400_and_garbage_is_dropped() -> None:
    layer = TransactionLayer()
    bad = bytes(request("INVITE")).replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    layer.receive_datagram(bad, UAC, now=0.0)
    (data,) = sent(layer)
    response = parse_response(data)
    assert response.status == 400 and "does not match" in response.reason
    assert response.top_via.branch == "z9hG4bK-1"
    (event,) = events(layer)
    assert isinstance(event, MessageDropped)
    layer.receive_datagram(b"\x00\xffnot sip at all", UAC, now=0.0)
    assert sent(layer) == [] and isinstance(events(layer)[0], MessageDropped)
    layer.receive_datagram(b"\r\n\r\n", UAC, now=0.0)  # keep-alive: silently ignored
    assert sent(layer) == [] and events(layer) == []


def test_transport_error_fails_client_transactions() -> None:
    layer = TransactionLayer()
    transaction = layer.send_request(request("OPTIONS"), UAS, now=0.0)
    layer.transport_error(UAS, "ICMP port unreachable")
    assert events(layer) == [TransportError(transaction, "ICMP port unreachable")]
    assert layer.transaction_count == 0


def test_send_request_checks_the_branch() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError, match="branch"):
        layer.send_request(request("OPTIONS", "old-branch"), UAS, now=0.0)
    with pytest.raises(ValueError, match="ACK"):
        layer.send_request(request("ACK"), UAS, now=0.0)
    layer.send_request(request("OPTIONS"), UAS, now=0.0)
    with pytest.raises(ValueError, match="in use"):
        layer.send_request(request("OPTIONS"), UAS, now=0.0)


def test_two_layers_over_a_lossy_wire() -> None:
    """INVITE/200/ACK completes although the first INVITE and first 200 are lost."""
    uac, uas = TransactionLayer(), TransactionLayer(send_trying=False)
    drop = {0, 2}  # the first INVITE and the first 200, in wire order
    wire_index = 0
    now = 0.0
    invite = request("INVITE")
    client = uac.send_request(invite, UAS, now)
    server: ServerTransaction | None = None
    responses: list[SipResponse] = []
    uas_events: list[Event] = []
    for _ in range(200):
        for layer, source in ((uac, UAC), (uas, UAS)):
            peer_layer = uas if layer is uac else uac
            for data, _ in layer.datagrams_to_send():
                if wire_index not in drop:
                    peer_layer.receive_datagram(data, source, now)
                wire_index += 1
        for event in events(uas):
            uas_events.append(event)
            if isinstance(event, RequestReceived):
                server = event.transaction
                uas.send_response(server, make_response(server.request, 200, to_tag="t"), now)
        for event in events(uac):
            if isinstance(event, ResponseReceived):
                responses.append(event.response)
                ack = request("ACK", "z9hG4bK-ack")
                ack.headers.set("To", event.response.headers.get("To") or "")
                uac.send_stateless(ack, UAS)
        deadlines = [t for t in (uac.get_timer(), uas.get_timer()) if t is not None]
        if not deadlines:
            break
        now = min(deadlines)
        uac.handle_timer(now)
        uas.handle_timer(now)
    assert server is not None and server.terminated and client.terminated
    assert [r.status for r in responses][:1] == [200]
    assert isinstance(uas_events[0], RequestReceived)
    assert uas_events[1:] and all(isinstance(e, AckReceived) for e in uas_events[1:])
