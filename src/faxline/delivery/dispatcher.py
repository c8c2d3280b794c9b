"""The dispatcher: claims due deliveries, places their calls in worker processes, and records
what happened. Runs inside `faxline serve`, or alone as `faxline worker`."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.delivery import queue
from faxline.delivery.calls import CallOutcome, CallPlacer, LineCall, TrunkCall
from faxline.delivery.line import LinePlacer
from faxline.delivery.policy import (
    T30_RESOLUTION_REFUSED,
    Cause,
    Decision,
    Retry,
    RetryPolicy,
    decide,
)
from faxline.delivery.routing import LocalRoute, NoRoute, SimulatorRoute, SipRoute, route
from faxline.directory import simulator
from faxline.directory.simulator import Behaviour
from faxline.documents.faxtiff import check_fax_tiff, coarser_copy
from faxline.fax.job import fax_text
from faxline.metrics import context, registry
from faxline.store import faxes as fax_store
from faxline.store.blobs import BlobStore
from faxline.store.models import Delivery, Fax
from faxline.store.status import DeliveryStatus

FINAL = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)

log = logging.getLogger("faxline.dispatcher")

LOCAL_CALLS = 10**6  # calls to local extensions are bounded by FAXLINE_MAX_CALLS alone


def policy_from(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        busy=Retry(settings.retry_busy_attempts, settings.retry_busy_delay_s),
        no_answer=Retry(settings.retry_no_answer_attempts, settings.retry_no_answer_delay_s),
        t30_failure=Retry(settings.retry_t30_attempts, settings.retry_t30_delay_s),
        unavailable=Retry(settings.retry_unavailable_attempts, settings.retry_unavailable_delay_s),
    )


@dataclass
class _Prepared:
    call: LineCall | TrunkCall | None
    route_name: str
    max_calls: int
    local_extension: int | None = None
    keep_received: bool = False
    local_number: str | None = None  # the sending extension (call records)
    outcome: CallOutcome | None = None  # decided without a call (no route)
    # The node-local copy of the fax's document that the call sends (see BlobStore).
    document: Path | None = None

    @property
    def limited(self) -> bool:
        """Whether the call needs one of its route's slots (local calls are unlimited)."""
        return self.outcome is None and self.max_calls < LOCAL_CALLS


class Dispatcher:
    """Moves deliveries from `queued`/`retrying` to a final state by placing calls.

    Line calls (local extensions, the simulator) go to `line` (by default a pool of worker
    processes the dispatcher owns); trunk calls to `trunks`, the SIP gateway, when this
    process has one.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        files: BlobStore,
        settings: Settings,
        *,
        worker_id: str | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        line: CallPlacer[LineCall] | None = None,
        trunks: CallPlacer[TrunkCall] | None = None,
    ) -> None:
        self.sessions = sessions
        self.files = files
        self.settings = settings
        self.policy = policy_from(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self._own_line = LinePlacer(settings.max_calls) if line is None else None
        self.line: CallPlacer[LineCall] = line or self._own_line  # type: ignore[assignment]
        self.trunks = trunks
        self._running: dict[asyncio.Task[None], queue.Claim] = {}
        self._started: set[int] = set()  # attempts whose call was started
        self._stopping = False
        self._wake = asyncio.Event()
        registry.CALL_LIMIT.labels("out").set(settings.max_calls)

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run deliveries until `stop` is set, then drain."""
        log.info("dispatcher %s started (max %d calls)", self.worker_id, self.settings.max_calls)
        try:
            while not stop.is_set():
                await self.run_once()
                self._wake.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                await asyncio.wait(
                    waiters,
                    timeout=self.settings.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for w in waiters:
                    w.cancel()
        finally:
            await self.drain()

    @property
    def calls_running(self) -> int:
        """Deliveries this dispatcher holds now (at most FAXLINE_MAX_CALLS)."""
        return len(self._running)

    def poke(self) -> None:
        """Look for due deliveries now (e.g. right after a fax was queued)."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim what is due and free to run; start each call. Returns how many started."""
        if self._stopping:
            return 0
        free = self.settings.max_calls - len(self._running)
        if free <= 0:
            return 0
        claims = await asyncio.to_thread(self._claim, free)
        for claim in claims:
            task = asyncio.create_task(self._deliver(claim))
            self._running[task] = claim
            task.add_done_callback(self._done)
        return len(claims)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until no call is running (tests)."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def drain(self) -> None:
        """Start nothing new; let running calls finish for a while, then give them back."""
        self._stopping = True
        if self._running:
            log.info("draining %d calls", len(self._running))
            _, pending = await asyncio.wait(
                list(self._running), timeout=self.settings.drain_timeout_s
            )
            for task in pending:
                claim = self._running.get(task)
                task.cancel()
                if claim is not None:
                    started = claim.attempt_id in self._started
                    await asyncio.gather(task, return_exceptions=True)  # its call has stopped
                    await asyncio.to_thread(self._release, claim, 0.0, started)
        if self._own_line is not None:
            self._own_line.close()

    # -- one delivery ---------------------------------------------------------------------

    async def _deliver(self, claim: queue.Claim) -> None:
        # Every log line of this delivery's task (and its threads) carries its ids.
        with context.scope(
            fax_id=claim.fax_id, delivery_id=claim.delivery_id, attempt_id=claim.attempt_id
        ):
            prepared = await asyncio.to_thread(self._prepare, claim)
            try:
                with context.scope(trunk=prepared.route_name):
                    await self._deliver_prepared(claim, prepared)
            finally:
                if prepared.document is not None:
                    self.files.release_copy(prepared.document)

    async def _deliver_prepared(self, claim: queue.Claim, prepared: _Prepared) -> None:
        if prepared.limited and not await asyncio.to_thread(self._take_slot, claim, prepared):
            # Every call the route allows is running somewhere in the cluster: later.
            await asyncio.to_thread(self._release, claim, 1.0, False)
            return
        try:
            if not await asyncio.to_thread(self._start, claim, prepared):
                self._lost(claim)
                return
            self._started.add(claim.attempt_id)
            if prepared.outcome is not None:
                outcome = prepared.outcome
            else:
                assert prepared.call is not None
                calls = registry.CALLS_IN_PROGRESS.labels("out", prepared.route_name)
                calls.inc()
                try:
                    placed = await self._place(claim, prepared.call)
                    if placed is not None and placed.t30_code == T30_RESOLUTION_REFUSED:
                        placed = await self._coarser(claim, prepared.call, placed)
                finally:
                    calls.dec()
                if placed is None:
                    return
                outcome = placed
            await asyncio.to_thread(self._finish, claim, prepared, outcome)
        finally:
            self._started.discard(claim.attempt_id)

    async def _place(self, claim: queue.Claim, call: LineCall | TrunkCall) -> CallOutcome | None:
        """The call's outcome, or None if the lease was lost and the call stopped for it."""
        if isinstance(call, LineCall):
            placing = asyncio.ensure_future(self.line.place(call))
        elif self.trunks is None:
            return CallOutcome(Cause.UNAVAILABLE, sip_reason="SIP is off in this process")
        else:
            placing = asyncio.ensure_future(self.trunks.place(call))
        heartbeat = asyncio.ensure_future(self._heartbeat(claim))
        try:
            await asyncio.wait([placing, heartbeat], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            placing.cancel()
            heartbeat.cancel()
            await asyncio.gather(placing, heartbeat, return_exceptions=True)
            raise
        if placing.done():
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            return placing.result()
        # The lease is gone: another worker may be sending this fax now. Hang up.
        placing.cancel()
        await asyncio.gather(placing, return_exceptions=True)
        await asyncio.to_thread(self._interrupt, claim)
        self._lost(claim)
        return None

    async def _coarser(
        self, claim: queue.Claim, call: LineCall | TrunkCall, refused: CallOutcome
    ) -> CallOutcome | None:
        """The far end refused the pages' resolution: send them again one step down
        (superfine to fine, fine to standard), in the same attempt, until one is taken.

        Only when nothing coarser exists (the pages are already standard) does the
        refusal stand; the outcome records the resolution that was sent.
        """
        document = await asyncio.to_thread(Path(call.document).read_bytes)
        outcome: CallOutcome | None = refused
        while outcome is not None and outcome.t30_code == T30_RESOLUTION_REFUSED:
            step = await asyncio.to_thread(coarser_copy, document)
            if step is None:
                return outcome
            document, resolution = step
            staged = self.files.spool_path()
            try:
                await asyncio.to_thread(staged.write_bytes, document)
                outcome = await self._place(claim, dataclasses.replace(call, document=str(staged)))
            finally:
                self.files.discard(staged)
            if outcome is not None:
                outcome = dataclasses.replace(outcome, resolution=resolution.value)
        return outcome

    async def _heartbeat(self, claim: queue.Claim) -> None:
        """Renew the lease until it is lost; return then (the call must stop).

        A renewal that fails (the database is unreachable) is tried again at the next beat;
        once the lease may have run out by now, it counts as lost.
        """
        loop = asyncio.get_running_loop()
        interval = self.settings.lease_s / 3
        renewed = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await asyncio.to_thread(self._renew, claim):
                    return
                renewed = loop.time()
            except Exception:
                log.exception("could not renew the lease of delivery %d", claim.delivery_id)
                if loop.time() - renewed + interval >= self.settings.lease_s:
                    return

    def _lost(self, claim: queue.Claim) -> None:
        log.warning(
            "attempt %d of delivery %d lost its lease; it stopped and recorded nothing",
            claim.attempt_id,
            claim.delivery_id,
        )

    # -- database work (in threads) -------------------------------------------------------

    def _claim(self, limit: int) -> list[queue.Claim]:
        with self.sessions() as s:
            return queue.claim_due(s, self.worker_id, limit, self.clock(), self.settings.lease_s)

    def _take_slot(self, claim: queue.Claim, prepared: _Prepared) -> bool:
        with self.sessions() as s:
            return queue.take_slot(s, claim, prepared.route_name, prepared.max_calls)

    def _start(self, claim: queue.Claim, prepared: _Prepared) -> bool:
        with self.sessions() as s:
            return queue.start_attempt(
                s,
                claim,
                self.clock(),
                trunk=prepared.route_name,
                local_number=prepared.local_number,
            )

    def _renew(self, claim: queue.Claim) -> bool:
        with self.sessions() as s:
            return queue.renew(s, claim, self.settings.lease_s)

    def _interrupt(self, claim: queue.Claim) -> None:
        with self.sessions() as s:
            queue.interrupt(s, claim, self.clock())

    def _release(self, claim: queue.Claim, delay_s: float, started: bool) -> None:
        with self.sessions() as s:
            queue.release(s, claim, self.clock(), delay_s, started=started)

    def _prepare(self, claim: queue.Claim) -> _Prepared:
        with self.sessions() as s:
            fax = s.get(Fax, claim.fax_id)
            assert fax is not None
            where = route(s, claim.destination)
            name = fax.document
            local_number = fax.extension.number
            ident = fax_text(fax.extension.caller_id, 20)
            header = fax_text(fax.extension.header, 50)
        if isinstance(where, NoRoute):
            return _Prepared(
                None,
                where.route,
                1,
                local_number=local_number,
                outcome=CallOutcome(Cause.NO_ROUTE, t30_text=where.reason),
            )
        # SpanDSP sends from a file: the document's copy on this node (the blob's own file
        # where blobs are files), released once the delivery task ends.
        copy = self.files.local_copy(name)
        try:
            prepared = self._call(claim, where, str(copy), ident, header)
        except BaseException:
            self.files.release_copy(copy)
            raise
        return dataclasses.replace(prepared, document=copy, local_number=local_number)

    def _call(
        self,
        claim: queue.Claim,
        where: SipRoute | LocalRoute | SimulatorRoute,
        document: str,
        ident: str,
        header: str,
    ) -> _Prepared:
        if isinstance(where, SipRoute):
            trunk_call = TrunkCall(
                number=where.number,
                trunk=where.trunk,
                document=document,
                ident=ident,
                header=header,
                caller_id=ident or None,
            )
            return _Prepared(trunk_call, where.route, where.max_calls)
        base = LineCall(
            document=document,
            ident=ident,
            header=header,
            ecm=True,
            transport=self.settings.local_transport,
            receive_into="",
            far_ident="",
            paced=self.settings.paced_calls,
            seed=claim.delivery_id * 1000 + claim.attempts,
        )
        if isinstance(where, LocalRoute):
            call = dataclasses.replace(
                base,
                receive_into=str(self.files.spool_path()),
                far_ident=fax_text(where.ident, 20),
            )
            return _Prepared(call, "local", LOCAL_CALLS, local_extension=where.extension_id)
        assert isinstance(where, SimulatorRoute)
        b = where.behaviour
        folder = self.settings.simulator_folder / where.number.lstrip("+")
        folder.mkdir(parents=True, exist_ok=True)
        lossy = b.behaviour is Behaviour.LOSSY
        transport = "audio" if lossy else b.transport or base.transport
        if claim.attempts > 0:
            # An earlier attempt's call may have reached the far end and its holder died
            # before recording it. The simulated far end is ours, so ask it (a real fax
            # network cannot be asked: see the README's "Exactly once").
            already = simulator.received_before(folder, claim.delivery_id)
            if already is not None:
                held = _held_already(already, transport)
                return _Prepared(None, where.route, where.max_calls, outcome=held)
        call = dataclasses.replace(
            base,
            receive_into=str(simulator.far_end_file(folder, claim.delivery_id, claim.attempts + 1)),
            far_ident=b.ident,
            far_ecm=b.ecm,
            far_fine=b.behaviour is not Behaviour.REFUSE_FINE,
            far_superfine=b.behaviour not in (Behaviour.REFUSE_FINE, Behaviour.REFUSE_SUPERFINE),
            transport=transport,
            ecm=b.ecm if lossy else base.ecm,
            seed=b.seed if lossy else base.seed,
            busy=b.behaviour is Behaviour.BUSY or claim.attempts < b.busy_attempts,
            no_answer=b.behaviour is Behaviour.NO_ANSWER,
            hangup_after_page=b.page if b.behaviour is Behaviour.HANGUP_AFTER_PAGE else None,
            lost_audio_blocks=b.loss if lossy else 0.0,
        )
        return _Prepared(call, where.route, where.max_calls, keep_received=True)

    def _finish(self, claim: queue.Claim, prepared: _Prepared, outcome: CallOutcome) -> None:
        now = self.clock()
        counted = False
        received = Path(outcome.received) if outcome.received else None
        with self.sessions() as s:
            delivery = s.get(Delivery, claim.delivery_id)
            assert delivery is not None
            decision = decide(
                outcome.cause,
                attempts=claim.attempts + 1,
                cancel_requested=delivery.cancel_requested,
                policy=self.policy,
                now=now,
            )
            try:
                with self.files.transaction(s) as writes:
                    if not queue.finish(s, claim, outcome, decision, now):
                        self._lost(claim)
                        return
                    counted = True
                    if received is not None and prepared.local_extension is not None:
                        fax = s.get(Fax, claim.fax_id)
                        assert fax is not None
                        fax_store.add_received(
                            s,
                            writes,
                            received,
                            extension_id=prepared.local_extension,
                            remote_ident=prepared.call.ident if prepared.call else None,
                            remote_number=fax.extension.number,
                            now=now,
                        )
            finally:
                call = prepared.call
                if isinstance(call, LineCall) and call.receive_into and not prepared.keep_received:
                    self.files.discard(Path(call.receive_into))
        if counted:  # committed: the figures match the database
            _count(prepared.route_name, outcome, decision)
        log.info(
            "delivery %d to %s: %s (%s, %d pages)",
            claim.delivery_id,
            claim.destination,
            decision.status.value,
            outcome.cause.value,
            outcome.pages,
        )


def _held_already(received: Path, transport: str) -> CallOutcome:
    """The outcome of an attempt whose call an earlier, dead holder made: delivered, with
    the far end's count of pages (and the transport that call was planned with)."""
    pages = check_fax_tiff(received).pages
    note = f"the far end already held this fax ({received.name}); not sent again"
    return CallOutcome(Cause.DELIVERED, transport=transport, pages=pages, t30_text=note)


def _count(route_name: str, outcome: CallOutcome, decision: Decision) -> None:
    registry.ATTEMPTS.labels(outcome.transport or "none", route_name, outcome.cause.value).inc()
    if outcome.sip_status is not None:
        registry.SIP_RESPONSES.labels(route_name, str(outcome.sip_status)).inc()
    if decision.status in FINAL:
        registry.DELIVERIES_FINISHED.labels(
            decision.status.value, decision.failure_reason or ""
        ).inc()
