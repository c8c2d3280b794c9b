from __future__ import annotations

from pathlib import Path

import pytest

from faxline.sip.dialog import Dialog, new_branch, new_call_id, new_tag
from faxline.sip.errors import DialogError
from faxline.sip.headers import Headers, Via
from faxline.sip.message import SipRequest, make_response, parse_request, parse_response
from faxline.sip.uri import Address, SipUri

CAPTURES = Path(__file__).parent / "captures"
OUR_VIA = Via("192.0.2.10", 5060)
OUR_CONTACT = Address.parse("<sip:faxline@192.0.2.10:5060>")


def our_invite() -> SipRequest:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:5070;rport;branch={new_branch()}")
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:faxline@127.0.0.1:5070>;tag=fl-77e0a4b1")
    headers.add("To", "<sip:0003*211@127.0.0.1>")
    headers.add("Call-ID", "1-4411@127.0.0.1")
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", "<sip:faxline@127.0.0.1:5070>")
    return SipRequest("INVITE", SipUri.parse("sip:0003*211@127.0.0.1"), headers)


def test_uac_dialog_through_a_record_routing_proxy() -> None:
    ok = parse_response((CAPTURES / "ok_record_route.sip").read_bytes())
    ok.headers.add("Record-Route", "<sip:edge.example;lr>")  # a second proxy, nearer to us
    invite = our_invite()
    dialog = Dialog.as_uac(invite, ok)
    assert dialog.id == ("1-4411@127.0.0.1", "fl-77e0a4b1", "3828SIPpTag011")
    assert dialog.remote_target == SipUri.parse("sip:sipp@127.0.0.1:5080;transport=UDP")
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:edge.example;lr",
        "sip:127.0.0.1;lr=on;ftag=fl-77e0a4b1",
    ]
    assert dialog.matches(ok)
    ack = dialog.create_ack(invite, OUR_VIA)
    assert ack.method == "ACK" and ack.cseq.seq == 1 and dialog.local_seq == 1
    assert ack.top_via.branch != invite.top_via.branch
    assert ack.uri == dialog.remote_target
    assert [str(r.uri) for r in ack.route] == [str(r.uri) for r in dialog.route_set]
    assert Dialog.next_hop(ack) == SipUri.parse("sip:edge.example;lr")
    bye = dialog.create_request("BYE", OUR_VIA)
    assert bye.cseq.seq == 2 and bye.to.tag == "3828SIPpTag011" and bye.from_.tag == "fl-77e0a4b1"
    assert bye.top_via.branch and bye.top_via.branch.startswith("z9hG4bK")
    assert bytes(parse_request(bytes(bye))) == bytes(bye)


def test_uas_dialog_and_target_refresh() -> None:
    invite = parse_request((CAPTURES / "invite_asterisk.sip").read_bytes())
    invite.headers.add("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
    dialog = Dialog.as_uas(invite, "fl-a81c22d0", OUR_CONTACT)
    assert dialog.remote_seq == 9120 and dialog.local_seq == 0
    assert [r.uri.host for r in dialog.route_set] == ["p1.example", "p2.example"]
    reinvite = parse_request((CAPTURES / "reinvite_t38.sip").read_bytes())
    assert dialog.matches(reinvite)
    reinvite.headers.set("Contact", "<sip:asterisk@198.51.100.8:5060>")
    dialog.receive_request(reinvite)
    assert dialog.remote_seq == 9121
    assert dialog.remote_target.host == "198.51.100.8"
    with pytest.raises(DialogError, match="CSeq"):
        dialog.receive_request(reinvite)
    ours = dialog.create_request("INVITE", OUR_VIA, body=b"v=0\r\n")
    assert ours.cseq.seq == 1 and ours.uri.host == "198.51.100.8"
    assert ours.headers.get("Contact") == str(OUR_CONTACT)
    assert ours.content_type == "application/sdp"
    assert [r.uri.host for r in ours.route] == ["p1.example", "p2.example"]
    dialog.receive_response(make_response(ours, 200, contact=Address.parse("<sip:x@198.51.100.9>")))
    assert dialog.remote_target.host == "198.51.100.9"


def test_strict_router_goes_into_the_request_uri() -> None:
    invite = parse_request((CAPTURES / "invite_asterisk.sip").read_bytes())
    invite.headers.add(
        "Record-Route", "<sip:strict.example;maddr=10.0.0.1>, <sip:loose.example;lr>"
    )
    dialog = Dialog.as_uas(invite, "tag", OUR_CONTACT)
    bye = dialog.create_request("BYE", OUR_VIA)
    assert bye.uri == SipUri.parse("sip:strict.example")
    assert [str(r.uri) for r in bye.route] == [
        "sip:loose.example;lr",
        "sip:asterisk@198.51.100.7:5060",
    ]
    assert Dialog.next_hop(bye) == SipUri.parse("sip:loose.example;lr")


def test_dialog_needs_tags_and_contact() -> None:
    invite = our_invite()
    with pytest.raises(DialogError):
        Dialog.as_uac(invite, make_response(invite, 200))
    with pytest.raises(DialogError, match="Contact"):
        Dialog.as_uac(invite, make_response(invite, 200, to_tag="x"))
    invite.headers.remove("Contact")
    with pytest.raises(DialogError, match="Contact"):
        Dialog.as_uas(invite, "t", OUR_CONTACT)


def test_ack_and_cancel_need_the_invite_cseq() -> None:
    invite = our_invite()
    dialog = Dialog.as_uac(invite, make_response(invite, 200, to_tag="x", contact=OUR_CONTACT))
    with pytest.raises(ValueError, match="CSeq"):
        dialog.create_request("ACK", OUR_VIA)


def test_identifiers_are_fresh() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert new_tag() != new_tag()
    assert new_call_id("h").endswith("@h")
