"""HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 22).

Parses a ``WWW-Authenticate`` / ``Proxy-Authenticate`` challenge and computes the
``Authorization`` / ``Proxy-Authorization`` answer: MD5 (what SIP trunks use), MD5-sess,
SHA-256 and SHA-256-sess, with ``qop=auth``, ``qop=auth-int`` or the RFC 2069 form without
qop. The client nonce is a parameter so that results are reproducible.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import DigestError
from .message import SipRequest, SipResponse
from .uri import split_outside

_HASHES = {"md5": hashlib.md5, "sha-256": hashlib.sha256}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s",]+)\s*')


@dataclass(frozen=True)
class DigestChallenge:
    """One digest challenge; ``qop`` lists the offered quality-of-protection values."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a header value such as ``Digest realm="x", nonce="y", qop="auth"``."""
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            raise DigestError(f"not a digest challenge: {scheme!r}")
        params: dict[str, str] = {}
        try:
            items = split_outside(rest, ",")
        except ValueError as exc:
            raise DigestError(str(exc)) from exc
        for item in items:
            if not item.strip():
                continue
            match = _PARAM.fullmatch(item)
            if match is None:
                raise DigestError(f"bad challenge parameter {item.strip()[:40]!r}")
            raw = match.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[match.group(1).lower()] = raw
        if "realm" not in params or "nonce" not in params:
            raise DigestError("challenge lacks realm or nonce")
        algorithm = params.get("algorithm", "MD5")
        if _hash_name(algorithm) not in _HASHES:
            raise DigestError(f"unsupported digest algorithm {algorithm!r}")
        qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=algorithm,
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )


@dataclass(frozen=True)
class Credentials:
    """A user name and password for a realm (or any realm when ``realm`` is None)."""

    username: str
    password: str
    realm: str | None = None


def _hash_name(algorithm: str) -> str:
    name = algorithm.lower()
    return name[:-5] if name.endswith("-sess") else name


def _h(algorithm: str, text: str) -> str:
    return _HASHES[_hash_name(algorithm)](text.encode()).hexdigest()


def digest_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """Compute the ``response`` value (RFC 2617 3.2.2.1, RFC 7616 3.4.1)."""
    if _hash_name(algorithm) not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    if (qop is not None or algorithm.lower().endswith("-sess")) and not cnonce:
        raise DigestError("a cnonce is required with qop or -sess")
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.lower().endswith("-sess"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        a2 = f"{method}:{uri}:{_HASHES[_hash_name(algorithm)](body).hexdigest()}"
    elif qop in (None, "auth"):
        a2 = f"{method}:{uri}"
    else:
        raise DigestError(f"unsupported qop {qop!r}")
    ha2 = _h(algorithm, a2)
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def authorization_value(
    challenge: DigestChallenge,
    credentials: Credentials,
    method: str,
    uri: str,
    *,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) header value for a request."""
    qop = "auth" if "auth" in challenge.qop else "auth-int" if "auth-int" in challenge.qop else None
    if challenge.qop and qop is None:
        raise DigestError(f"no supported qop in {challenge.qop}")
    response = digest_response(
        username=credentials.username,
        password=credentials.password,
        realm=challenge.realm,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )
    parts = [
        f'username="{_quote(credentials.username)}"',
        f'realm="{_quote(challenge.realm)}"',
        f'nonce="{_quote(challenge.nonce)}"',
        f'uri="{_quote(uri)}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{_quote(challenge.opaque)}"')
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}", f'cnonce="{_quote(cnonce)}"']
    return "Digest " + ", ".join(parts)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def authorize(
    request: SipRequest,
    challenge_response: SipResponse,
    credentials: Credentials,
    *,
    cnonce: str,
    nc: int = 1,
) -> None:
    """Add the answer to a 401/407's challenges to ``request`` (in place).

    The caller gives the request a new branch and a higher CSeq (RFC 3261 22.2). Raises
    :class:`DigestError` if the response carries no challenge we can answer.
    """
    if challenge_response.status == 401:
        challenge_name, answer_name = "WWW-Authenticate", "Authorization"
    elif challenge_response.status == 407:
        challenge_name, answer_name = "Proxy-Authenticate", "Proxy-Authorization"
    else:
        raise DigestError(f"status {challenge_response.status} is not a challenge")
    answers: list[str] = []
    errors: list[str] = []
    for value in challenge_response.headers.get_lines(challenge_name):
        try:
            challenge = DigestChallenge.parse(value)
        except DigestError as exc:
            errors.append(str(exc))
            continue
        if credentials.realm is not None and credentials.realm != challenge.realm:
            errors.append(f"no credentials for realm {challenge.realm!r}")
            continue
        answers.append(
            authorization_value(
                challenge,
                credentials,
                request.method,
                str(request.uri),
                cnonce=cnonce,
                nc=nc,
                body=request.body,
            )
        )
        break  # one answer per challenging realm is enough for a single trunk
    if not answers:
        raise DigestError("; ".join(errors) or f"{challenge_name} missing")
    request.headers.remove(answer_name)
    for answer in answers:
        request.headers.add(answer_name, answer)
