from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faxline.sip.errors import SipParseError
from faxline.sip.headers import CSeq, Headers, Via
from faxline.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
    parse_request,
    parse_response,
)
from faxline.sip.uri import Address, SipUri

CAPTURES = Path(__file__).parent / "captures"


def capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.sip")))
def test_captures_round_trip(name: str) -> None:
    data = capture(name)
    assert bytes(parse_message(data)) == data


def test_invite_from_asterisk() -> None:
    invite = parse_request(capture("invite_asterisk.sip"))
    assert invite.method == "INVITE"
    assert invite.uri == SipUri(host="192.0.2.10", user="0003*210", port=5060)
    assert invite.cseq == CSeq(9120, "INVITE")
    assert invite.call_id == "8a1f5c2e-3b7d-4e90-a6c4-1f2e3d4c5b6a"
    assert invite.from_.display_name == "Acme Front Desk"
    assert invite.from_.tag == "4d7e1a9c-2f33-4c5b-8e61-0d9b2c7f1a44"
    assert invite.to.tag is None
    via = invite.top_via
    assert via.branch == "z9hG4bKPj3f1c8a2e-6b1d-4a0e-9d5e-5a8c1e7f0b21"
    assert via.params["rport"] is None
    assert via.sent_by == ("198.51.100.7", 5060)
    assert invite.content_type == "application/sdp"
    assert invite.body.startswith(b"v=0\r\n")
    assert "INVITE" in invite.headers.get_all("Allow")
    assert len(invite.headers.get_all("Allow")) == 13


def test_compact_forms_are_the_long_headers() -> None:
    register = parse_request(capture("register.sip"))
    assert register.call_id == "reg-7f3e2d1c@192.0.2.10"
    assert register.top_via.branch == "z9hG4bK-faxline-reg-0001"
    assert register.contacts[0].params == {"expires": "3600"}
    assert register.headers.get("content-length") == "0"
    assert register.headers.get("Call-Id") == register.headers.get("i")


def test_response_with_record_route_through_proxy() -> None:
    ok = parse_response(capture("ok_record_route.sip"))
    assert ok.status == 200 and ok.reason == "OK"
    assert [v.sent_by for v in ok.vias] == [("127.0.0.1", 5060), ("127.0.0.1", 5070)]
    (route,) = ok.record_route
    assert route.uri.lr and route.uri.params["ftag"] == "fl-77e0a4b1"
    assert ok.contacts[0].uri.transport == "udp"


def test_401_keeps_the_challenge_whole() -> None:
    response = parse_response(capture("unauthorized_401.sip"))
    (challenge,) = response.headers.get_all("WWW-Authenticate")
    assert challenge.startswith("Digest realm=") and 'qop="auth"' in challenge


def test_multi_value_headers_split_outside_quotes_and_brackets() -> None:
    headers = Headers(
        [
            ("Route", '<sip:a.example;lr>, "Odd, Name" <sip:b.example;lr>'),
            ("Route", "<sip:c.example;lr>"),
            ("Subject", "hello, world"),
        ]
    )
    assert headers.get_all("Route") == [
        "<sip:a.example;lr>",
        '"Odd, Name" <sip:b.example;lr>',
        "<sip:c.example;lr>",
    ]
    assert headers.get_all("Subject") == ["hello, world"]
    assert Address.parse(headers.get_all("Route")[1]).display_name == "Odd, Name"


def test_several_vias_in_one_line() -> None:
    data = capture("ok_record_route.sip").replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK5c1e.0a7f3b2d0000000000000000\r\nVia:",
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK5c1e.0a7f3b2d0000000000000000,",
    )
    response = parse_response(data)
    assert len(response.vias) == 2


def test_folded_header_lines_are_unfolded() -> None:
    data = capture("register.sip").replace(b"User-Agent: faxline/0.1", b"Subject: a\r\n  b")
    assert parse_message(data).headers.get("Subject") == "a b"


def test_truncated_body_is_an_error() -> None:
    data = capture("invite_asterisk.sip")
    with pytest.raises(SipParseError, match="truncated"):
        parse_message(data[:-10])


def test_extra_bytes_after_body_are_dropped() -> None:
    data = capture("invite_asterisk.sip")
    message = parse_message(data + b"garbage")
    assert bytes(message) == data


def test_missing_content_length_takes_the_datagram() -> None:
    data = capture("register.sip").replace(b"l: 0\r\n", b"") + b"xyz"
    message = parse_message(data)
    assert message.body == b"xyz"
    assert bytes(message).endswith(b"Content-Length: 3\r\n\r\nxyz")


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"CSeq: 9120 INVITE", b"CSeq: 9120 BYE", "does not match"),
        (b"CSeq: 9120 INVITE", b"CSeq: 99999999999 INVITE", "CSeq"),
        (b"Call-ID: 8a1f", b"X-Call: 8a1f", "missing Call-ID"),
        (b"Content-Length: ", b"Content-Length: -", "Content-Length"),
        (b"Max-Forwards: 70", b"Max-Forwards: 700", "Max-Forwards"),
        (b"INVITE sip:0003", b"INVITE tel:0003", "not a SIP URI"),
        (b" SIP/2.0\r\n", b" SIP/3.0\r\n", "request line"),
        (b"To: <sip:0003*210@192.0.2.10>", b"To: <sip:0003*210@192.0.2.10", "'<'"),
        (b"Via: SIP/2.0/UDP 198.51", b"Via: SIP/2.0/UDP :198.51", "host"),
        (b"Contact: <sip:asterisk@198.51.100.7:5060>", b"Contact: <sip:asterisk@", "'<'"),
        (b"Max-Forwards: 70", b"Record-Route: <sip:p;lr>, sip:", "bad host"),
    ],
)
def test_malformed_messages(old: bytes, new: bytes, match: str) -> None:
    data = capture("invite_asterisk.sip")
    assert old in data
    with pytest.raises(SipParseError, match=match):
        parse_message(data.replace(old, new, 1))


def test_bad_status_line() -> None:
    data = capture("unauthorized_401.sip").replace(b"401", b"4x1", 1)
    with pytest.raises(SipParseError, match="status line"):
        parse_message(data)


def test_make_response_copies_dialog_headers() -> None:
    invite = parse_request(capture("invite_asterisk.sip"))
    invite.headers.add("Record-Route", "<sip:proxy1.example;lr>, <sip:proxy2.example;lr>")
    contact = Address.parse("<sip:faxline@192.0.2.10:5060>")
    ok = make_response(invite, 200, to_tag="fl-1", contact=contact, body=b"v=0\r\n")
    assert ok.reason == "OK"
    assert ok.headers.get_lines("Via") == invite.headers.get_lines("Via")
    assert ok.to.tag == "fl-1"
    assert ok.from_ == invite.from_
    assert ok.call_id == invite.call_id and ok.cseq == invite.cseq
    assert [str(r.uri) for r in ok.record_route] == [
        "sip:proxy1.example;lr",
        "sip:proxy2.example;lr",
    ]
    assert ok.content_type == "application/sdp"
    parsed = parse_response(bytes(ok))
    assert bytes(parsed) == bytes(ok)
    trying = make_response(invite, 100, to_tag="fl-1")
    assert trying.to.tag is None and trying.record_route == []
    busy = make_response(invite, 486, to_tag="fl-1")
    assert busy.to.tag == "fl-1" and busy.record_route == []


def test_make_response_keeps_existing_to_tag() -> None:
    reinvite = parse_request(capture("reinvite_t38.sip"))
    ok = make_response(reinvite, 200, to_tag="other")
    assert ok.to.tag == "fl-a81c22d0"


def test_uri_parsing() -> None:
    uri = SipUri.parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
    assert uri.scheme == "sips" and uri.user == "alice:secret"
    assert uri.host_port() == ("2001:db8::1", 5061)
    assert uri.transport == "tcp" and uri.lr and uri.headers == "subject=x"
    assert str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x"
    for bad in ["sip:", "sip:host:99999", "http://x", "sip:a@b;", "sip:ho st", "sip:h;=1"]:
        with pytest.raises(SipParseError):
            SipUri.parse(bad)


def test_address_forms() -> None:
    spec = Address.parse("sip:bob@example.com;tag=abc")
    assert spec.uri.params == {} and spec.tag == "abc"
    named = Address.parse('"Bob \\"B\\"" <sip:bob@example.com;lr>;tag=x')
    assert named.display_name == 'Bob "B"' and named.uri.lr
    assert Address.parse(str(named)) == named
    plain = Address.parse("Bob Smith <sip:bob@example.com>")
    assert plain.display_name == "Bob Smith"
    assert str(plain) == "Bob Smith <sip:bob@example.com>"


def test_via_and_cseq() -> None:
    via = Via.parse("SIP / 2.0 / udp  host.example:5070 ;branch=z9hG4bK1;received=1.2.3.4")
    assert via.transport == "UDP" and via.port == 5070 and via.branch == "z9hG4bK1"
    assert str(via) == "SIP/2.0/UDP host.example:5070;branch=z9hG4bK1;received=1.2.3.4"
    for bad in ["SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;branch=a b"]:
        with pytest.raises(SipParseError):
            Via.parse(bad)
    with pytest.raises(SipParseError):
        CSeq.parse("1 INVITE extra")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)


_MUTATION_SEED = capture("invite_asterisk.sip")


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(_MUTATION_SEED) - 1), st.binary(min_size=0, max_size=8))
def test_mutated_captures_raise_only_parse_errors(position: int, junk: bytes) -> None:
    data = _MUTATION_SEED[:position] + junk + _MUTATION_SEED[position + len(junk) :]
    try:
        message = parse_message(data)
    except SipParseError:
        return
    again = parse_message(bytes(message))
    assert bytes(again) == bytes(message)
    assert again.body == message.body


_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
_hosts = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)


@st.composite
def requests(draw: st.DrawFn) -> SipRequest:
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS", "REGISTER", "CANCEL"]))
    host = draw(_hosts)
    uri = SipUri(
        host=host, user=draw(st.none() | _tokens), port=draw(st.none() | st.integers(1, 65535))
    )
    headers = Headers()
    for _ in range(draw(st.integers(1, 3))):
        headers.add("Via", f"SIP/2.0/UDP {draw(_hosts)};branch=z9hG4bK{draw(_tokens)}")
    headers.add("From", f"<sip:{draw(_tokens)}@{host}>;tag={draw(_tokens)}")
    headers.add(draw(st.sampled_from(["To", "t"])), f"<sip:{draw(_tokens)}@{host}>")
    headers.add("Call-ID", draw(_tokens))
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    headers.add("Max-Forwards", str(draw(st.integers(0, 255))))
    body = draw(st.binary(max_size=40))
    return SipRequest(method=method, uri=uri, headers=headers, body=body)


@settings(max_examples=200, deadline=None)
@given(requests())
def test_build_parse_build_is_stable(request: SipRequest) -> None:
    data = bytes(request)
    parsed = parse_request(data)
    assert bytes(parsed) == data
    assert parsed.method == request.method and parsed.uri == request.uri
    assert parsed.body == request.body
    response = make_response(parsed, 200, to_tag="t1")
    assert bytes(parse_response(bytes(response))) == bytes(response)
    assert isinstance(parse_message(bytes(response)), SipResponse)
