"""faxline endpoints on a virtual network: user agent cores and fax call flows, real SpanDSP,
media ticked every 20 ms of network time (see :mod:`faxline.testing.network`).

An :class:`Endpoint` is what one `faxline serve` process is to its calls: one user agent
core at ``(ip, 5060)``, and per call a flow whose RTP and UDPTL ports are nodes of the
network. Its ticker plays the media clock: one pass every 20 ms for all its calls, and the
flows' own deadlines in between. Events of the core go to the flow that owns their handle;
the rest (new calls, say) wait in :attr:`Endpoint.unclaimed`.
"""

from __future__ import annotations

import itertools
import math
import random

from faxline.fax.job import FaxJob
from faxline.sip.admission import Admission
from faxline.sip.agent import UserAgentCore
from faxline.sip.call import IncomingInvite
from faxline.sip.events import Handle, NewCall, UaEvent, subject
from faxline.sip.negotiation import LocalMedia
from faxline.sip.uri import SipUri
from faxline.telephony.flow import FaxCallFlow
from faxline.telephony.media import CallMedia, Port
from faxline.telephony.results import T38Mode
from faxline.testing.network import Address, VirtualNetwork

TICK_S = 0.02


class Endpoint:
    """One faxline endpoint at ``ip`` (SIP on port 5060, media from port 40000 on)."""

    def __init__(
        self,
        net: VirtualNetwork,
        ip: str,
        *,
        seed: int,
        user: str = "faxline",
        admission: Admission | None = None,
    ) -> None:
        self.net = net
        self.ip = ip
        self.sip_address = (ip, 5060)
        self.core = UserAgentCore(
            self.sip_address, rng=random.Random(seed), user=user, admission=admission
        )
        self.rng = random.Random(seed + 1)
        self.flows: list[FaxCallFlow] = []
        self.unclaimed: list[UaEvent] = []
        self.ticks = 0
        self._last_tick: int | None = None
        self._owners: dict[Handle, FaxCallFlow] = {}
        self._ports: dict[tuple[FaxCallFlow, Port], _MediaPort] = {}
        self._next_port = itertools.count(40000, 2)
        net.attach(self.sip_address, _SipPort(self))
        net.attach((ip, 1), _Ticker(self))  # never sent to: a node only for its timer

    @property
    def uri(self) -> SipUri:
        return SipUri(host=self.ip, port=5060, user="fax")

    def new_calls(self) -> list[IncomingInvite]:
        """The INVITEs nobody has taken yet (taken by this call)."""
        calls = [e.incoming for e in self.unclaimed if isinstance(e, NewCall)]
        self.unclaimed = [e for e in self.unclaimed if not isinstance(e, NewCall)]
        return calls

    def send(
        self,
        job: FaxJob,
        to: Endpoint,
        mode: T38Mode = T38Mode.PREFER,
        *,
        media_timeout_s: float = 20.0,
        max_duration_s: float = 1800.0,
        answer_timeout_s: float = 60.0,
    ) -> FaxCallFlow:
        """Place a call to ``to`` that sends ``job``."""
        media, local = self._media(media_timeout_s, max_duration_s)
        flow = FaxCallFlow.dial(
            self.core,
            media,
            job,
            mode,
            local,
            uri=to.uri,
            peer=to.sip_address,
            now=self.net.now,
            rng=self.rng,
            answer_timeout_s=answer_timeout_s,
        )
        self._adopt(flow, local)
        return flow

    def answer(
        self,
        incoming: IncomingInvite,
        job: FaxJob,
        mode: T38Mode = T38Mode.PREFER,
        *,
        media_timeout_s: float = 20.0,
        max_duration_s: float = 1800.0,
    ) -> FaxCallFlow:
        """Answer ``incoming`` to receive into ``job``."""
        media, local = self._media(media_timeout_s, max_duration_s)
        flow = FaxCallFlow.answer(
            self.core, media, job, mode, local, incoming, now=self.net.now, rng=self.rng
        )
        self._adopt(flow, local)
        return flow

    def vanish(self) -> None:
        """The host dies: nothing it sends or is sent arrives any more."""
        for address in [self.sip_address, (self.ip, 1)] + [
            port.address for port in self._ports.values()
        ]:
            self.net.detach(address)

    def _media(self, media_timeout_s: float, max_duration_s: float) -> tuple[CallMedia, LocalMedia]:
        port = next(self._next_port)
        media = CallMedia(
            rng=self.rng,
            media_timeout_s=media_timeout_s,
            max_duration_s=max_duration_s,
            now=self.net.now,
        )
        return media, LocalMedia(self.ip, port, port + 1)

    def _adopt(self, flow: FaxCallFlow, local: LocalMedia) -> None:
        self.flows.append(flow)
        for port, number in (("rtp", local.audio_port), ("udptl", local.image_port)):
            node = _MediaPort(flow, port, (self.ip, number))
            self._ports[(flow, port)] = node  # type: ignore[index]
            self.net.attach(node.address, node)
        self.settle(self.net.now)

    def settle(self, now: float) -> None:
        """Route the core's events to their flows and queue the flows' media."""
        while True:
            for flow in self.flows:
                for handle in flow.handles:
                    self._owners[handle] = flow
                for port, data, destination in flow.media.datagrams_to_send():
                    self._ports[(flow, port)].outbox.append((data, destination))
            event = self.core.next_event()
            if event is None:
                return
            handle = subject(event)
            owner = self._owners.get(handle) if handle is not None else None
            if owner is not None:
                owner.handle_sip(event, now)
            else:
                self.unclaimed.append(event)

    def next_tick(self) -> float | None:
        if not any(f.media.running for f in self.flows):
            return None
        return (math.floor(self.net.now / TICK_S + 1e-9) + 1) * TICK_S

    def on_tick(self, now: float) -> None:
        index = math.floor(now / TICK_S + 1e-9)
        blocks = 0
        if any(f.media.running for f in self.flows):
            blocks = 1 if self._last_tick is None else index - self._last_tick
            if blocks > 0:
                self._last_tick = index
                self.ticks += blocks
        else:
            self._last_tick = None
        for flow in self.flows:
            if blocks > 0 and flow.media.running:
                flow.tick(now, blocks)
            deadline = flow.get_timer()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
        self.settle(now)


class _SipPort:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        self.endpoint.core.receive_datagram(data, source, now)
        self.endpoint.settle(now)

    def handle_timer(self, now: float) -> None:
        self.endpoint.core.handle_timer(now)
        self.endpoint.settle(now)

    def get_timer(self) -> float | None:
        return self.endpoint.core.get_timer()

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        return self.endpoint.core.datagrams_to_send()


class _MediaPort:
    def __init__(self, flow: FaxCallFlow, port: Port, address: Address) -> None:
        self.flow = flow
        self.port = port
        self.address = address
        self.outbox: list[tuple[bytes, Address]] = []

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        self.flow.media.receive(self.port, data, source, now)

    def handle_timer(self, now: float) -> None:
        pass

    def get_timer(self) -> float | None:
        return None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self.outbox = self.outbox, []
        return out


class _Ticker:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        pass

    def handle_timer(self, now: float) -> None:
        self.endpoint.on_tick(now)

    def get_timer(self) -> float | None:
        times = [t for f in self.endpoint.flows if (t := f.get_timer()) is not None]
        tick = self.endpoint.next_tick()
        if tick is not None:
            times.append(tick)
        return min(times, default=None)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        return []
