"""A SIP user agent on asyncio: the socket shell around :class:`UserAgentCore`.

Everything a user agent decides is in the sans-I/O core (:mod:`faxline.sip.agent`); this
module binds the socket (:mod:`faxline.sip.transport`), resolves names, and turns the
core's events into awaitables for code that wants them: :meth:`UserAgent.call`,
:meth:`UserAgent.options`, :meth:`UserAgent.register`, a queue of :class:`IncomingCall`,
and per call (:class:`AsyncCall`) ``reinvite()``, ``bye()`` and a queue of
:class:`ReInvite` / :class:`~faxline.sip.agent.CallEnded`. Code that is itself sans-I/O
(the fax call flows) takes a handle's events directly instead (:meth:`UserAgent.attach`)
and drives the core, then calls :meth:`UserAgent.flush`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable

from .admission import Admission
from .agent import UserAgentCore
from .call import Call, CallFailed, IncomingInvite, IncomingReInvite
from .dialog import Dialog
from .digest import Credentials
from .events import (
    CallAnswered,
    CallCancelled,
    CallConfirmed,
    CallEnded,
    Handle,
    InviteFailed,
    NewCall,
    ReInviteAnswered,
    ReInviteFailed,
    ReInviteReceived,
    RequestAnswered,
    RequestTimedOut,
    UaEvent,
    subject,
)
from .message import SipRequest, SipResponse
from .sdp import SessionDescription
from .transaction import Address, MessageDropped, RequestRefused, Timers
from .transport import SipTransport
from .uri import Address as NameAddress
from .uri import SipUri

__all__ = [
    "AsyncCall",
    "CallEnded",
    "CallFailed",
    "IncomingCall",
    "ReInvite",
    "UserAgent",
]

logger = logging.getLogger(__name__)

Listener = Callable[[UaEvent, float], None]


class UserAgent:
    """One SIP endpoint on one UDP socket."""

    def __init__(self, transport: SipTransport, core: UserAgentCore) -> None:
        self.core = core
        self.incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self._transport = transport
        self._listeners: dict[Handle, Listener] = {}
        self._waiters: dict[object, asyncio.Future[UaEvent]] = {}
        self._calls: dict[Call, AsyncCall] = {}
        self._offered: dict[IncomingInvite, IncomingCall] = {}
        transport.drive(core, self._deliver)

    @classmethod
    async def listen(
        cls,
        host: str,
        port: int = 5060,
        *,
        user: str = "faxline",
        timers: Timers | None = None,
        admission: Admission | None = None,
        rng: random.Random | None = None,
    ) -> UserAgent:
        """A user agent bound to ``host:port`` (an IP address; port 0 for any).

        ``rng`` makes tags, branches and Call-IDs (default: the system's CSPRNG).
        """
        transport = await SipTransport.bind(host, port)
        core = UserAgentCore(
            transport.local_address,
            rng=rng or random.SystemRandom(),
            user=user,
            timers=timers,
            admission=admission,
        )
        return cls(transport, core)

    @property
    def user(self) -> str:
        """The user part of our Contact."""
        return self.core.user

    @property
    def address(self) -> Address:
        """The bound ``(host, port)``."""
        return self.core.address

    @property
    def contact(self) -> NameAddress:
        """Our Contact address."""
        return self.core.contact

    def now(self) -> float:
        """The clock the core runs on (the event loop's)."""
        return self._transport.now()

    def flush(self) -> None:
        """Send what the core queued and re-arm its timer (after driving it directly)."""
        self._transport.flush()

    def close(self) -> None:
        """Close the socket (calls are not ended: send BYE first)."""
        self._transport.close()

    # -- sans-I/O users -----------------------------------------------------------------

    def attach(self, handle: Handle, listener: Listener) -> None:
        """Send the events about ``handle`` to ``listener(event, now)`` instead of here."""
        self._listeners[handle] = listener

    def detach(self, handle: Handle) -> None:
        """Stop sending ``handle``'s events to its listener."""
        self._listeners.pop(handle, None)

    # -- outgoing -----------------------------------------------------------------------

    async def call(
        self,
        uri: SipUri | str,
        offer: SessionDescription,
        *,
        destination: Address | None = None,
        from_uri: SipUri | None = None,
        credentials: Credentials | None = None,
        timeout: float = 60.0,
    ) -> AsyncCall:
        """Place a call and wait for its answer; raise :class:`CallFailed` otherwise.

        ``destination`` overrides where the INVITE goes (an outbound proxy or trunk), and
        then stays the next hop of the call's requests; by default it is the Request-URI's
        host. 401/407 challenges are answered once with ``credentials``. A call that rings
        for ``timeout`` seconds is cancelled (408 when nothing answered at all).
        Cancelling the task cancels the call.
        """
        target = SipUri.parse(uri) if isinstance(uri, str) else uri
        peer = destination or await resolve(target)
        invite = self.core.invite(
            target,
            offer,
            peer,
            self.now(),
            from_uri=from_uri,
            credentials=credentials,
            answer_timeout=timeout,
            outbound_proxy=destination is not None,
        )
        try:
            event = await self._wait(invite)
        except asyncio.CancelledError:
            # Our caller gave up (a draining dispatcher): stop the far end ringing too.
            self.core.cancel(invite, self.now())
            self.flush()
            raise
        if isinstance(event, InviteFailed):
            raise CallFailed(event.status, event.reason, timed_out=event.timed_out)
        assert isinstance(event, CallAnswered)
        return self._calls[event.call]

    async def options(
        self, uri: SipUri | str, *, destination: Address | None = None
    ) -> SipResponse:
        """Send OPTIONS (a trunk or proxy health check) and return the final response.

        Raises :class:`CallFailed` (408) when nothing answers within Timer F.
        """
        target = SipUri.parse(uri) if isinstance(uri, str) else uri
        peer = destination or await resolve(target)
        return await self._final(self.core.options(target, peer, self.now()))

    async def register(
        self,
        registrar: SipUri | str,
        *,
        aor: SipUri | None = None,
        credentials: Credentials | None = None,
        expires: int = 3600,
        destination: Address | None = None,
    ) -> int:
        """Register our Contact for ``aor`` (default: our user at the registrar's domain).

        Answers one 401/407 with ``credentials``; returns the expiry the registrar granted
        (0 after an un-REGISTER with ``expires=0``). Refreshing before it runs out is the
        caller's job. Raises :class:`CallFailed` when the registrar refuses.
        """
        target = SipUri.parse(registrar) if isinstance(registrar, str) else registrar
        peer = destination or await resolve(target)
        request = self.core.register(
            target, peer, self.now(), aor=aor, credentials=credentials, expires=expires
        )
        response = await self._final(request)
        if response.status >= 300:
            raise CallFailed(response.status, response.reason)
        return _granted_expiry(response, self.contact.uri, expires)

    async def _final(self, request: object) -> SipResponse:
        event = await self._wait(request)
        if isinstance(event, RequestTimedOut):
            raise CallFailed(408, event.reason)
        assert isinstance(event, RequestAnswered)
        return event.response

    async def _wait(self, handle: object) -> UaEvent:
        future: asyncio.Future[UaEvent] = asyncio.get_running_loop().create_future()
        self._waiters[handle] = future
        self.flush()
        try:
            return await future
        finally:
            self._waiters.pop(handle, None)

    def _resolve_waiter(self, handle: object, event: UaEvent) -> None:
        future = self._waiters.pop(handle, None)
        if future is not None and not future.done():
            future.set_result(event)

    # -- events -------------------------------------------------------------------------

    def _deliver(self) -> bool:
        """Take the core's events: to their listeners, or to the awaitables here."""
        took = False
        while (event := self.core.next_event()) is not None:
            took = True
            handle = subject(event)
            listener = self._listeners.get(handle) if handle is not None else None
            if listener is not None:
                listener(event, self.now())
            else:
                self._default(event)
        return took

    def _default(self, event: UaEvent) -> None:
        if isinstance(event, NewCall):
            incoming = IncomingCall(self, event.incoming)
            self._offered[event.incoming] = incoming
            self.incoming.put_nowait(incoming)
        elif isinstance(event, CallCancelled):
            offered = self._offered.pop(event.incoming, None)
            if offered is not None:
                offered.cancelled.set()
        elif isinstance(event, CallAnswered):
            self._wrap(event.call)
            self._resolve_waiter(event.invite, event)
        elif isinstance(event, InviteFailed):
            self._resolve_waiter(event.invite, event)
        elif isinstance(event, (RequestAnswered, RequestTimedOut)):
            self._resolve_waiter(event.request, event)
        elif isinstance(event, (ReInviteAnswered, ReInviteFailed)):
            self._resolve_waiter(("reinvite", event.call), event)
        elif isinstance(event, CallConfirmed):
            wrapper = self._calls.get(event.call)
            if wrapper is not None:
                wrapper.confirmed.set()
        elif isinstance(event, ReInviteReceived):
            wrapper = self._calls.get(event.reinvite.call)
            if wrapper is not None:
                wrapper.events.put_nowait(ReInvite(self, event.reinvite))
        elif isinstance(event, CallEnded):
            wrapper = self._calls.pop(event.call, None)
            if wrapper is not None:
                wrapper.ended.set()
                wrapper.events.put_nowait(event)
        elif isinstance(event, RequestRefused):
            logger.debug("refused %s from %s: %d", event.request.method, event.source, event.status)
        elif isinstance(event, MessageDropped):
            logger.info("dropped SIP datagram from %s: %s", event.source, event.reason)

    def _wrap(self, call: Call) -> AsyncCall:
        wrapper = self._calls.get(call)
        if wrapper is None:
            wrapper = AsyncCall(self, call)
            self._calls[call] = wrapper
        return wrapper


class IncomingCall:
    """An INVITE that started a new call; answer with ``ringing``/``accept``/``reject``."""

    def __init__(self, ua: UserAgent, handle: IncomingInvite) -> None:
        self.ua = ua
        self.handle = handle
        self.cancelled = asyncio.Event()

    @property
    def request(self) -> SipRequest:
        """The INVITE."""
        return self.handle.request

    @property
    def offer(self) -> SessionDescription | None:
        """Its SDP offer (None: a late offer)."""
        return self.handle.offer

    @property
    def source(self) -> Address:
        """Where it came from."""
        return self.handle.source

    def ringing(self, status: int = 180, sdp: SessionDescription | None = None) -> None:
        """Send 180 Ringing, or 183 Session Progress with ``sdp`` for early media."""
        self.ua.core.ring(self.handle, self.ua.now(), status, sdp)
        self.ua.flush()

    def reject(
        self,
        status: int,
        reason: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse the call (486 busy, 488 no acceptable media, 401 with a challenge...)."""
        self.ua._offered.pop(self.handle, None)
        self.ua.core.reject(self.handle, status, self.ua.now(), reason, extra_headers)
        self.ua.flush()

    def accept(self, answer: SessionDescription) -> AsyncCall:
        """Answer 200 with ``answer`` (an offer, if the INVITE had none) and return the call.

        Raises :class:`CallFailed` (487) when the caller has cancelled.
        """
        self.ua._offered.pop(self.handle, None)
        call = self.ua.core.accept(self.handle, answer, self.ua.now())
        self.ua.flush()
        return self.ua._wrap(call)


class ReInvite:
    """A re-INVITE from the peer (e.g. the switch to T.38); ``accept`` or ``reject`` it."""

    def __init__(self, ua: UserAgent, handle: IncomingReInvite) -> None:
        self.ua = ua
        self.handle = handle

    @property
    def request(self) -> SipRequest:
        """The re-INVITE."""
        return self.handle.request

    @property
    def offer(self) -> SessionDescription | None:
        """Its SDP offer (None: the peer asks for ours)."""
        return self.handle.offer

    def accept(self, answer: SessionDescription) -> None:
        """Answer 200 with ``answer``; the call's SDPs are updated."""
        self.ua.core.accept_reinvite(self.handle, answer, self.ua.now())
        self.ua.flush()

    def reject(self, status: int = 488, reason: str | None = None) -> None:
        """Refuse the new session; the old one stays."""
        self.ua.core.reject_reinvite(self.handle, self.ua.now(), status, reason)
        self.ua.flush()


class AsyncCall:
    """An established call, for asyncio code: its state is the core's :class:`Call`."""

    def __init__(self, ua: UserAgent, state: Call) -> None:
        self.ua = ua
        self.state = state
        self.events: asyncio.Queue[ReInvite | CallEnded] = asyncio.Queue()
        self.confirmed = asyncio.Event()
        self.ended = asyncio.Event()
        if state.confirmed:
            self.confirmed.set()

    @property
    def dialog(self) -> Dialog:
        """The call's dialog."""
        return self.state.dialog

    @property
    def peer(self) -> Address:
        """Where in-dialog requests go."""
        return self.state.peer

    @property
    def local_sdp(self) -> SessionDescription:
        """Our current session description."""
        return self.state.local_sdp

    @property
    def remote_sdp(self) -> SessionDescription | None:
        """The peer's current session description."""
        return self.state.remote_sdp

    @property
    def end_reason(self) -> str | None:
        """``"bye"``, ``"local"`` or ``"no ack"`` once ended."""
        return self.state.end_reason

    async def reinvite(
        self, offer: SessionDescription, timeout: float = 32.0
    ) -> SessionDescription:
        """Send a re-INVITE with ``offer``; return the peer's answer.

        Raises :class:`CallFailed` on an error response (491 on glare: retry later).
        """
        self.ua.core.reinvite(self.state, offer, self.ua.now(), timeout)
        event = await self.ua._wait(("reinvite", self.state))
        if isinstance(event, ReInviteFailed):
            raise CallFailed(event.status, event.reason)
        assert isinstance(event, ReInviteAnswered)
        return event.answer

    async def bye(self) -> None:
        """End the call and wait for the BYE's answer (no-op if it has ended)."""
        request = self.ua.core.bye(self.state, self.ua.now())
        if request is not None:
            await self.ua._wait(request)


async def resolve(uri: SipUri) -> Address:
    """The address to send to for ``uri`` (its host resolved, its port or 5060)."""
    host, port = uri.host_port()
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    address = infos[0][4]
    return str(address[0]), int(address[1])


def _granted_expiry(response: SipResponse, contact: SipUri, requested: int) -> int:
    """The expiry a REGISTER's 2xx grants our Contact (RFC 3261 10.2.4)."""
    for address in response.contacts:
        if address.uri.host_port() == contact.host_port() and address.uri.user == contact.user:
            value = address.params.get("expires")
            if value is not None and value.isdigit():
                return int(value)
    header = response.headers.get("Expires")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return requested
