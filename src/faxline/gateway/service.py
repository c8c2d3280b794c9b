"""The SIP gateway: one user agent per process, inbound calls answered into extensions,
registrations to trunks kept fresh, and the user agent lent to the dispatcher for
outbound calls.

Which sources are trusted (the trunks' hosts, proxies and ``addresses``) is read at start
and every :data:`TRUST_REFRESH_S` seconds; the user agent core asks it before any server
transaction exists, so a stranger's INVITE gets one stateless 403 (see
:mod:`faxline.sip.admission`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.delivery.calls import CallOutcome, TrunkCall
from faxline.directory.trunks import TrunkConfig
from faxline.fax.job import FaxJob, fax_text
from faxline.gateway.inbound import (
    InboundTarget,
    IpNetwork,
    Reject,
    admit,
    called_number,
    inbound_record,
    number_variants,
    trusted,
)
from faxline.gateway.outbound import SipTimers, call_trunk
from faxline.metrics import context, registry
from faxline.sip.admission import Admission
from faxline.sip.call import CallFailed
from faxline.sip.digest import Credentials
from faxline.sip.ua import IncomingCall, UserAgent
from faxline.sip.uri import SipUri
from faxline.store import faxes as fax_store
from faxline.store import records, registrations
from faxline.store.blobs import BlobStore
from faxline.store.models import Extension, Route
from faxline.store.records import CallRecord
from faxline.telephony import T38Mode, receive_fax

log = logging.getLogger("faxline.sip")

RETRY_REGISTER_S = 30.0
TRUST_REFRESH_S = 10.0
"""How often the trunks (and their hosts' addresses) are read again for the trust check."""
REFUSAL = (403, "Forbidden (not a provisioned trunk)")


class SipGateway:
    """Owns the user agent of this process; places the dispatcher's trunk calls."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        files: BlobStore,
        *,
        accept_inbound: bool = True,
        listen: tuple[str, int] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        min_refresh_s: float = 5.0,
        node_id: str | None = None,
    ) -> None:
        self.settings = settings
        # Never re-REGISTER more often than this, whatever the registrar grants.
        self.min_refresh_s = min_refresh_s
        # Who holds a trunk's registration lease (the node's id; see store.registrations).
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sessions = sessions
        self.files = files
        self.accept_inbound = accept_inbound
        self.listen = listen or settings.sip_address or ("127.0.0.1", 0)
        self.clock = clock
        self._ua: UserAgent | None = None
        self._trunk_networks: list[tuple[TrunkConfig, list[IpNetwork]]] = []
        self._trunk_names: list[str] = []  # in the order of _trunk_networks
        self._tasks: set[asyncio.Task[None]] = set()
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def ua(self) -> UserAgent:
        if self._ua is None:
            raise RuntimeError("the SIP gateway is not started")
        return self._ua

    @property
    def media_host(self) -> str:
        return self.settings.sip_media_host or self.listen[0]

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def start(self) -> None:
        host, port = self.listen
        if self.accept_inbound:
            registry.CALL_LIMIT.labels("in").set(self.settings.sip_max_inbound_calls)
        await self._refresh_trust()
        admission = Admission(self._trusted, refusal=REFUSAL)
        self._ua = await UserAgent.listen(host, port, user="faxline", admission=admission)
        log.info("SIP listening on %s:%d", *self._ua.address)
        self._spawn(self._keep_trust_fresh())
        if self.accept_inbound:
            self._spawn(self._serve_inbound())
        for name, trunk in await asyncio.to_thread(self._trunks):
            if trunk.registration:
                self._spawn(self._keep_registered(name, trunk))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # They end at once; a registration's lease is given up on the way out.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._calls:
            await asyncio.wait(list(self._calls), timeout=self.settings.drain_timeout_s)
        for task in list(self._calls):
            task.cancel()
        if self._ua is not None:
            self._ua.close()
            self._ua = None

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- outbound -------------------------------------------------------------------------

    async def place(self, call: TrunkCall) -> CallOutcome:
        """A delivery's call through a trunk (the dispatcher's `CallPlacer` for trunks)."""
        timers = SipTimers(
            answer_timeout_s=self.settings.sip_answer_timeout_s,
            media_timeout_s=self.settings.sip_media_timeout_s,
            max_duration_s=self.settings.sip_max_call_s,
        )
        return await call_trunk(self.ua, call, media_host=self.media_host, timers=timers)

    # -- trust --------------------------------------------------------------------------

    def _trusted(self, ip: str) -> bool:
        return trusted(ip, [n for _, nets in self._trunk_networks for n in nets])

    async def _refresh_trust(self) -> None:
        named = await asyncio.to_thread(self._trunks)
        trunks = [t for _, t in named]
        networks = await _networks(trunks)
        self._trunk_networks = list(zip(trunks, networks.values(), strict=True))
        self._trunk_names = [name for name, _ in named]

    async def _keep_trust_fresh(self) -> None:
        while True:
            await asyncio.sleep(TRUST_REFRESH_S)
            try:
                await self._refresh_trust()
            except Exception:  # the database may be away for a moment: keep the last list
                log.exception("cannot read the trunks for the trust check")

    # -- inbound --------------------------------------------------------------------------

    async def _serve_inbound(self) -> None:
        while True:
            incoming = await self.ua.incoming.get()
            task = asyncio.create_task(self._answer(incoming))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    def _trunk_of(self, source_ip: str) -> tuple[str, TrunkConfig | None]:
        """The name and settings of the trunk a call comes from (`unknown` if none)."""
        for name, (trunk, nets) in zip(self._trunk_names, self._trunk_networks, strict=False):
            if trusted(source_ip, nets):
                return name, trunk
        return "unknown", None

    async def _answer(self, incoming: IncomingCall) -> None:
        started = self.clock()
        trunk_name, trunk = self._trunk_of(incoming.source[0])
        call_id = incoming.request.call_id
        with context.scope(call_id=call_id, trunk=trunk_name):
            calls = registry.CALLS_IN_PROGRESS.labels("in", trunk_name)
            calls.inc()
            try:
                await self._answer_in_scope(incoming, started, trunk_name, trunk)
            finally:
                calls.dec()

    async def _answer_in_scope(
        self,
        incoming: IncomingCall,
        started: dt.datetime,
        trunk_name: str,
        trunk: TrunkConfig | None,
    ) -> None:
        source_ip = incoming.source[0]
        number = called_number(incoming.request.uri.user)
        caller = called_number(incoming.request.from_.uri.user)
        record = CallRecord(
            direction="in",
            trunk=trunk_name,
            local_number=number,
            remote_number=caller,
            started_at=started,
        )
        trunk_networks = self._trunk_networks
        target = await asyncio.to_thread(self._target, number) if number else None
        decision = admit(
            source_ip,
            number,
            [n for _, nets in trunk_networks for n in nets],
            target,
            self.active_calls - 1,  # this call is already counted
            self.settings.sip_max_inbound_calls,
        )
        if isinstance(decision, Reject):
            log.info("INVITE from %s for %r refused: %d", source_ip, number, decision.status)
            incoming.reject(decision.status, decision.reason)
            registry.INBOUND_CALLS.labels(trunk_name, "rejected").inc()
            rejected = dataclasses.replace(
                record,
                ended_at=self.clock(),
                outcome="rejected",
                sip_status=decision.status,
                sip_reason=decision.reason,
            )
            await asyncio.to_thread(self._record, rejected)
            return
        mode = T38Mode(trunk.t38) if trunk is not None else T38Mode.PREFER
        record = dataclasses.replace(record, local_number=decision.number)
        staged = self.files.spool_path()
        job = FaxJob.receive(str(staged), ident=fax_text(decision.ident, 20), ecm=True)
        try:
            result = await receive_fax(
                incoming,
                job,
                t38=mode,
                media_host=self.media_host,
                media_timeout_s=self.settings.sip_media_timeout_s,
                max_duration_s=self.settings.sip_max_call_s,
            )
            fax = result.fax
            log.info(
                "inbound call from %s to %s ended (%s): %s",
                caller,
                decision.number,
                result.ended,
                fax.completion_text if fax else result.sip_status,
            )
            record = inbound_record(record, result, self.clock())
            stored = fax is not None and fax.pages > 0 and staged.exists()
            registry.INBOUND_CALLS.labels(trunk_name, record.outcome or "failed").inc()
            await asyncio.to_thread(
                self._store, staged if stored else None, decision, record, caller
            )
        finally:
            self.files.discard(staged)

    def _store(
        self,
        staged: Path | None,
        target: InboundTarget,
        record: CallRecord,
        caller: str | None,
    ) -> None:
        """The call's record, and the fax it brought (if any), in one transaction."""
        with self.sessions() as s, self.files.transaction(s) as writes:
            if staged is not None:
                fax = fax_store.add_received(
                    s,
                    writes,
                    staged,
                    extension_id=target.extension_id,
                    remote_ident=record.remote_ident,
                    remote_number=caller,
                    now=self.clock(),
                )
                record = dataclasses.replace(record, fax_id=fax.id)
            records.add(s, record)

    def _record(self, record: CallRecord) -> None:
        with self.sessions() as s:
            records.add(s, record)
            s.commit()

    def _target(self, number: str) -> InboundTarget | None:
        with self.sessions() as s:
            extensions = s.scalars(select(Extension).where(Extension.fax_enabled.is_(True))).all()
            variants = set(number_variants(number))
            for ext in extensions:
                if ext.number == number or variants.intersection(ext.dids):
                    return InboundTarget(ext.id, ext.number, ext.caller_id or "")
        return None

    def _trunks(self) -> list[tuple[str, TrunkConfig]]:
        with self.sessions() as s:
            rows = s.scalars(select(Route).where(Route.kind == "trunk").order_by(Route.id)).all()
            return [(r.name, TrunkConfig.model_validate(r.config)) for r in rows]

    # -- registration ---------------------------------------------------------------------

    async def _keep_registered(self, name: str, trunk: TrunkConfig) -> None:
        """REGISTER to `trunk` and refresh it, while this node holds the trunk's lease.

        The lease is renewed every third of its time; a node that loses it (or cannot
        reach the database for a whole lease) stops refreshing, and the node that takes
        the lease over registers its own Contact."""
        assert trunk.username is not None and trunk.password is not None
        credentials = Credentials(trunk.username, trunk.password)
        registrar = SipUri.parse(trunk.uri)
        lease_s = self.settings.registration_lease_s
        loop = asyncio.get_running_loop()
        holding = False
        next_register = 0.0
        held_at = loop.time()
        try:
            while True:
                try:
                    held = await asyncio.to_thread(self._hold, name, lease_s)
                except Exception:  # the database is away: keep what we had for one lease
                    log.exception("cannot renew the registration lease of trunk %s", name)
                    held = holding and loop.time() - held_at < lease_s * 2 / 3
                else:
                    if held:
                        held_at = loop.time()
                if held != holding:
                    log.info("%s the registration of trunk %s", "keeping" if held else "left", name)
                    holding = held
                    next_register = loop.time()
                if holding and loop.time() >= next_register:
                    try:
                        granted = await self.ua.register(
                            registrar, credentials=credentials, expires=trunk.register_expires
                        )
                        log.info("registered to trunk %s for %d s", name, granted)
                        next_register = loop.time() + max(self.min_refresh_s, granted * 0.8)
                    except (CallFailed, OSError) as e:
                        log.warning("registration to trunk %s failed: %s", name, e)
                        next_register = loop.time() + RETRY_REGISTER_S
                wake = lease_s / 3
                if holding:
                    wake = min(wake, max(0.0, next_register - loop.time()))
                await asyncio.sleep(wake)
        finally:
            if holding:
                with contextlib.suppress(Exception):  # it runs out by itself otherwise
                    await asyncio.to_thread(self._let_go, name)

    def _hold(self, trunk: str, lease_s: float) -> bool:
        with self.sessions() as s:
            return registrations.hold(s, trunk, self.node_id, lease_s)

    def _let_go(self, trunk: str) -> None:
        with self.sessions() as s:
            registrations.let_go(s, trunk, self.node_id)


async def _networks(trunks: list[TrunkConfig]) -> dict[int, list[IpNetwork]]:
    """Each trunk's source networks: its URI's host (resolved) and its extra addresses."""
    out: dict[int, list[IpNetwork]] = {}
    loop = asyncio.get_running_loop()
    for i, trunk in enumerate(trunks):
        nets: list[IpNetwork] = [ipaddress.ip_network(a, strict=False) for a in trunk.addresses]
        for uri in filter(None, (trunk.uri, trunk.proxy)):
            host = SipUri.parse(uri).host.strip("[]")
            try:
                nets.append(ipaddress.ip_network(host))
            except ValueError:
                with contextlib.suppress(OSError):
                    for info in await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM):
                        nets.append(ipaddress.ip_network(info[4][0]))
        out[i] = nets
    return out
