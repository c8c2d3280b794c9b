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
import datetime as dt
import ipaddress
import logging
import socket
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
    number_variants,
    trusted,
)
from faxline.gateway.outbound import SipTimers, call_trunk
from faxline.sip.admission import Admission
from faxline.sip.call import CallFailed
from faxline.sip.digest import Credentials
from faxline.sip.ua import IncomingCall, UserAgent
from faxline.sip.uri import SipUri
from faxline.store import faxes as fax_store
from faxline.store.files import FileStore
from faxline.store.models import Extension, Route
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
        files: FileStore,
        *,
        accept_inbound: bool = True,
        listen: tuple[str, int] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        min_refresh_s: float = 5.0,
    ) -> None:
        self.settings = settings
        # Never re-REGISTER more often than this, whatever the registrar grants.
        self.min_refresh_s = min_refresh_s
        self.sessions = sessions
        self.files = files
        self.accept_inbound = accept_inbound
        self.listen = listen or settings.sip_address or ("127.0.0.1", 0)
        self.clock = clock
        self._ua: UserAgent | None = None
        self._trunk_networks: list[tuple[TrunkConfig, list[IpNetwork]]] = []
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
        for task in list(self._tasks):
            task.cancel()
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
        trunks = [t for _, t in await asyncio.to_thread(self._trunks)]
        networks = await _networks(trunks)
        self._trunk_networks = list(zip(trunks, networks.values(), strict=True))

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

    async def _answer(self, incoming: IncomingCall) -> None:
        source_ip = incoming.source[0]
        number = called_number(incoming.request.uri.user)
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
            return
        mode = T38Mode.PREFER
        for trunk, nets in trunk_networks:
            if trusted(source_ip, nets):
                mode = T38Mode(trunk.t38)
                break
        staged = self.files.staging_path()
        job = FaxJob.receive(str(staged), ident=fax_text(decision.ident, 20), ecm=True)
        caller = incoming.request.from_.uri.user
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
            if fax is not None and fax.pages > 0 and staged.exists():
                await asyncio.to_thread(
                    self._store, staged, decision, fax.remote_ident, called_number(caller)
                )
        finally:
            self.files.discard(staged)

    def _store(
        self, staged: Path, target: InboundTarget, ident: str | None, caller: str | None
    ) -> None:
        with self.sessions() as s, self.files.committing(s) as written:
            _, published = fax_store.add_received(
                s,
                self.files,
                staged,
                extension_id=target.extension_id,
                remote_ident=ident,
                remote_number=caller,
                now=self.clock(),
            )
            written.append(published)

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
        assert trunk.username is not None and trunk.password is not None
        credentials = Credentials(trunk.username, trunk.password)
        registrar = SipUri.parse(trunk.uri)
        while True:
            try:
                granted = await self.ua.register(
                    registrar, credentials=credentials, expires=trunk.register_expires
                )
                log.info("registered to trunk %s for %d s", name, granted)
                delay = max(self.min_refresh_s, granted * 0.8)
            except (CallFailed, OSError) as e:
                log.warning("registration to trunk %s failed: %s", name, e)
                delay = RETRY_REGISTER_S
            await asyncio.sleep(delay)


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
