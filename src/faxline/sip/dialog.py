"""Dialog state (RFC 3261 12) and in-dialog request construction.

A :class:`Dialog` is created from the request and response that established it (as UAC
or UAS), keeps the CSeq counters, the remote target and the route set, and builds ACK,
BYE, re-INVITE and other in-dialog requests with the right Request-URI and Route headers
for both loose (``;lr``) and strict routers (12.2.1.1). Sending is not its business:
:meth:`Dialog.next_hop` says which URI the shell must resolve and send to.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field, replace

from .errors import DialogError, SipParseError
from .headers import BRANCH_MAGIC, Headers, Via
from .message import SipRequest, SipResponse
from .uri import Address, SipUri


def _token(size: int, rng: random.Random | None) -> str:
    if rng is None:
        return secrets.token_hex(size)
    return rng.getrandbits(8 * size).to_bytes(size, "big").hex()


def new_branch(rng: random.Random | None = None) -> str:
    """A fresh RFC 3261 branch (magic cookie plus 64 random bits).

    ``rng`` is where the bits come from (the user agent core's); ``secrets`` by default.
    """
    return BRANCH_MAGIC + _token(8, rng)


def new_tag(rng: random.Random | None = None) -> str:
    """A fresh From/To tag."""
    return _token(6, rng)


def new_call_id(host: str, rng: random.Random | None = None) -> str:
    """A fresh, globally unique Call-ID."""
    return f"{_token(12, rng)}@{host}"


@dataclass
class Dialog:
    """One dialog, seen from our side."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: SipUri
    local_contact: Address
    route_set: list[Address] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        """``(Call-ID, local tag, remote tag)``."""
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uac(cls, request: SipRequest, response: SipResponse) -> Dialog:
        """The dialog a 1xx (with To tag) or 2xx to our ``request`` creates (12.1.2)."""
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if remote_tag is None or local_tag is None:
            raise DialogError("a dialog needs tags on both sides")
        contacts = response.contacts
        if not contacts and response.status < 300 and response.status >= 200:
            raise DialogError("a 2xx that creates a dialog must carry a Contact")
        local_contacts = request.contacts
        if not local_contacts:
            raise DialogError("our request carries no Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(response.to),
            remote_target=contacts[0].uri if contacts else request.uri,
            local_contact=local_contacts[0],
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.seq,
        )

    @classmethod
    def as_uas(cls, request: SipRequest, local_tag: str, local_contact: Address) -> Dialog:
        """The dialog our response (with To tag ``local_tag``) to ``request`` creates (12.1.1)."""
        remote_tag = request.from_.tag
        if remote_tag is None:
            raise DialogError("the request's From has no tag")
        contacts = request.contacts
        if not contacts:
            raise DialogError("a dialog-creating request must carry a Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=contacts[0].uri,
            local_contact=local_contact,
            route_set=list(request.record_route),
            remote_seq=request.cseq.seq,
        )

    def matches(self, message: SipRequest | SipResponse) -> bool:
        """Whether ``message`` belongs to this dialog (Call-ID and both tags)."""
        try:
            if message.call_id != self.call_id:
                return False
            if isinstance(message, SipRequest):
                return message.from_.tag == self.remote_tag and message.to.tag == self.local_tag
            return message.from_.tag == self.local_tag and message.to.tag == self.remote_tag
        except SipParseError:
            return False

    def create_request(
        self,
        method: str,
        via: Via,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> SipRequest:
        """Build an in-dialog request (12.2.1.1); ``via`` gets a fresh branch if it has none.

        The local CSeq is incremented, except for ACK and CANCEL, which must pass the
        CSeq number of the INVITE they belong to as ``cseq``.
        """
        if method in ("ACK", "CANCEL"):
            if cseq is None:
                raise ValueError(f"{method} needs the INVITE's CSeq number")
            number = cseq
        else:
            self.local_seq += 1
            number = self.local_seq
        if "branch" not in via.params:
            via = replace(via, params={**via.params, "branch": new_branch()})
        request_uri, routes = self._request_target()
        headers = Headers()
        headers.add("Via", str(via))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        headers.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{number} {method}")
        for route in routes:
            headers.add("Route", str(route))
        if method not in ("ACK", "CANCEL", "BYE"):
            headers.add("Contact", str(self.local_contact))
        for name, value in extra_headers or []:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return SipRequest(method, request_uri, headers, body)

    def create_ack(self, invite: SipRequest, via: Via, *, body: bytes = b"") -> SipRequest:
        """The ACK for a 2xx to ``invite`` (13.2.2.4): same CSeq number, its own branch.

        ``via`` should carry a fresh branch (one is made if it has none).
        """
        return self.create_request("ACK", via, body=body, cseq=invite.cseq.seq)

    def _request_target(self) -> tuple[SipUri, list[Address]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.lr:
            return self.remote_target, list(self.route_set)
        # Strict router: it goes in the Request-URI, the remote target becomes the last Route.
        uri = replace(
            first.uri,
            headers=None,
            params={
                k: v for k, v in first.uri.params.items() if k not in ("method", "ttl", "maddr")
            },
        )
        return uri, [*self.route_set[1:], Address(self.remote_target)]

    @staticmethod
    def next_hop(request: SipRequest) -> SipUri:
        """The URI to resolve and send ``request`` to: the first Route, else the R-URI."""
        routes = request.route
        return routes[0].uri if routes else request.uri

    def receive_request(self, request: SipRequest) -> None:
        """Check and record an in-dialog request's CSeq; refresh the target (12.2.2).

        Raises :class:`DialogError` for an out-of-order CSeq (answer 500).
        """
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                raise DialogError(f"CSeq {seq} is not above {self.remote_seq}")
            self.remote_seq = seq
        if request.method in ("INVITE", "UPDATE"):
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri

    def receive_response(self, response: SipResponse) -> None:
        """Refresh the remote target from a 2xx to our target-refresh request (re-INVITE)."""
        if 200 <= response.status < 300 and response.cseq.method in ("INVITE", "UPDATE"):
            contacts = response.contacts
            if contacts:
                self.remote_target = contacts[0].uri


def _without_tag(address: Address) -> Address:
    params = {k: v for k, v in address.params.items() if k != "tag"}
    return Address(uri=address.uri, display_name=address.display_name, params=params)
