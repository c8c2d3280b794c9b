from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from faxline.sip.digest import (
    Credentials,
    DigestChallenge,
    authorization_value,
    authorize,
    digest_response,
)
from faxline.sip.errors import DigestError
from faxline.sip.headers import Headers
from faxline.sip.message import SipRequest, parse_response
from faxline.sip.uri import SipUri

CAPTURES = Path(__file__).parent / "captures"


def test_rfc2617_example() -> None:
    response = digest_response(
        username="Mufasa",
        password="Circle Of Life",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc=1,
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    response = digest_response(
        username="Mufasa",
        password="Circle of Life",
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        method="GET",
        uri="/dir/index.html",
        algorithm=algorithm,
        qop="auth",
        nc=1,
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert response == expected


def test_rfc2069_form_without_qop() -> None:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    expected = md5(f"{md5('u:r:p')}:n:{md5('REGISTER:sip:r')}")
    value = digest_response(
        username="u", password="p", realm="r", nonce="n", method="REGISTER", uri="sip:r"
    )
    assert value == expected


def test_parse_challenge_from_capture() -> None:
    response = parse_response((CAPTURES / "unauthorized_401.sip").read_bytes())
    challenge = DigestChallenge.parse(response.headers.get("WWW-Authenticate") or "")
    assert challenge == DigestChallenge(
        realm="trunk.example.net",
        nonce="ZmF4bGluZS1ub25jZS0wMDAx",
        algorithm="MD5",
        qop=("auth",),
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="x"',
        'Digest nonce="n"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r, nonce="n"',
        "Digest realm=, nonce=n",
    ],
)
def test_bad_challenges(value: str) -> None:
    with pytest.raises(DigestError):
        DigestChallenge.parse(value)


def test_authorize_an_invite_after_401() -> None:
    response = parse_response((CAPTURES / "unauthorized_401.sip").read_bytes())
    headers = Headers()
    headers.add("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-2")
    headers.add("From", "<sip:faxline@trunk.example.net>;tag=fl-0c9d8e7f")
    headers.add("To", "<sip:+15550100999@trunk.example.net>")
    headers.add("Call-ID", "5b0e2c6a-71d4-4f3e-9a20-c8d1e4f5a6b7")
    headers.add("CSeq", "2 INVITE")
    invite = SipRequest("INVITE", SipUri.parse("sip:+15550100999@trunk.example.net"), headers)
    credentials = Credentials("faxline", "s3cret")
    authorize(invite, response, credentials, cnonce="abcdef01")
    value = invite.headers.get("Authorization") or ""
    expected = digest_response(
        username="faxline",
        password="s3cret",
        realm="trunk.example.net",
        nonce="ZmF4bGluZS1ub25jZS0wMDAx",
        method="INVITE",
        uri="sip:+15550100999@trunk.example.net",
        qop="auth",
        cnonce="abcdef01",
    )
    assert f'response="{expected}"' in value
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value
    assert "qop=auth, nc=00000001" in value
    assert value.startswith('Digest username="faxline", realm="trunk.example.net"')
    with pytest.raises(DigestError, match="realm"):
        authorize(invite, response, Credentials("a", "b", realm="elsewhere"), cnonce="c")


def test_proxy_challenge_gets_proxy_authorization() -> None:
    response = parse_response(
        (CAPTURES / "unauthorized_401.sip")
        .read_bytes()
        .replace(b"401 Unauthorized", b"407 Proxy Authentication Required")
        .replace(b"WWW-Authenticate", b"Proxy-Authenticate")
    )
    request = SipRequest("BYE", SipUri.parse("sip:x@y"), Headers())
    authorize(request, response, Credentials("u", "p"), cnonce="c")
    assert request.headers.get("Proxy-Authorization") is not None
    assert request.headers.get("Authorization") is None


def test_auth_int_only_challenge() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", qop=("auth-int",))
    value = authorization_value(challenge, Credentials("u", "p"), "INVITE", "sip:x", cnonce="c")
    assert "qop=auth-int" in value
