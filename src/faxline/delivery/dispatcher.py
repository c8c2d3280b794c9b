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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.delivery import queue
from faxline.delivery.calls import CallOutcome, CallPlacer, LineCall, TrunkCall
from faxline.delivery.line import LinePlacer
from faxline.delivery.policy import Cause, Retry, RetryPolicy, decide
from faxline.delivery.routing import LocalRoute, NoRoute, SimulatorRoute, SipRoute, route
from faxline.directory.simulator import Behaviour
from faxline.fax.job import fax_text
from faxline.store import faxes as fax_store
from faxline.store.files import FileStore
from faxline.store.models import Delivery, Fax

log = logging.getLogger("faxline.dispatcher")


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
    outcome: CallOutcome | None = None  # decided without a call (no route)


class Dispatcher:
    """Moves deliveries from `queued`/`retrying` to a final state by placing calls.

    Line calls (local extensions, the simulator) go to `line` (by default a pool of worker
    processes the dispatcher owns); trunk calls to `trunks`, the SIP gateway, when this
    process has one.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        files: FileStore,
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
        self._per_route: Counter[str] = Counter()
        self._stopping = False
        self._wake = asyncio.Event()

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
                    await asyncio.to_thread(self._release, claim, 0.0)
        if self._own_line is not None:
            self._own_line.close()

    # -- one delivery ---------------------------------------------------------------------

    async def _deliver(self, claim: queue.Claim) -> None:
        prepared = await asyncio.to_thread(self._prepare, claim)
        if prepared.outcome is None and self._per_route[prepared.route_name] >= prepared.max_calls:
            await asyncio.to_thread(self._release, claim, 1.0)
            return
        self._per_route[prepared.route_name] += 1
        try:
            attempt_id = await asyncio.to_thread(self._start, claim)
            if attempt_id is None:
                return
            if prepared.outcome is not None:
                outcome = prepared.outcome
            else:
                assert prepared.call is not None
                outcome = await self._place(claim, prepared.call)
            await asyncio.to_thread(self._finish, claim, attempt_id, prepared, outcome)
        finally:
            self._per_route[prepared.route_name] -= 1

    async def _place(self, claim: queue.Claim, call: LineCall | TrunkCall) -> CallOutcome:
        heartbeat = asyncio.create_task(self._heartbeat(claim))
        try:
            if isinstance(call, LineCall):
                return await self.line.place(call)
            if self.trunks is None:
                return CallOutcome(Cause.UNAVAILABLE, sip_reason="SIP is off in this process")
            return await self.trunks.place(call)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, claim: queue.Claim) -> None:
        interval = self.settings.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            ok = await asyncio.to_thread(self._renew, claim)
            if not ok:
                log.warning("lost the lease of delivery %d", claim.delivery_id)
                return

    # -- database work (in threads) -------------------------------------------------------

    def _claim(self, limit: int) -> list[queue.Claim]:
        with self.sessions() as s:
            return queue.claim_due(s, self.worker_id, limit, self.clock(), self.settings.lease_s)

    def _start(self, claim: queue.Claim) -> int | None:
        with self.sessions() as s:
            return queue.start_attempt(s, claim, self.worker_id, self.clock())

    def _renew(self, claim: queue.Claim) -> bool:
        with self.sessions() as s:
            return queue.renew(
                s, claim.delivery_id, self.worker_id, self.clock(), self.settings.lease_s
            )

    def _release(self, claim: queue.Claim, delay_s: float) -> None:
        with self.sessions() as s:
            queue.release(s, claim, self.worker_id, self.clock(), delay_s)

    def _prepare(self, claim: queue.Claim) -> _Prepared:
        with self.sessions() as s:
            fax = s.get(Fax, claim.fax_id)
            assert fax is not None
            where = route(s, claim.destination)
            document = str(self.files.path(fax.document))
            ident = fax_text(fax.extension.caller_id, 20)
            header = fax_text(fax.extension.header, 50)
        if isinstance(where, NoRoute):
            return _Prepared(
                None, where.route, 1, outcome=CallOutcome(Cause.NO_ROUTE, t30_text=where.reason)
            )
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
                receive_into=str(self.files.staging_path()),
                far_ident=fax_text(where.ident, 20),
            )
            return _Prepared(call, "local", 10**6, local_extension=where.extension_id)
        assert isinstance(where, SimulatorRoute)
        b = where.behaviour
        folder = self.settings.data_dir / "simulator" / where.number.lstrip("+")
        folder.mkdir(parents=True, exist_ok=True)
        lossy = b.behaviour is Behaviour.LOSSY
        call = dataclasses.replace(
            base,
            receive_into=str(folder / f"delivery-{claim.delivery_id}-{claim.attempts + 1}.tif"),
            far_ident=b.ident,
            far_ecm=b.ecm,
            far_fine=b.behaviour is not Behaviour.REFUSE_FINE,
            transport="audio" if lossy else b.transport or base.transport,
            ecm=b.ecm if lossy else base.ecm,
            seed=b.seed if lossy else base.seed,
            busy=b.behaviour is Behaviour.BUSY or claim.attempts < b.busy_attempts,
            no_answer=b.behaviour is Behaviour.NO_ANSWER,
            hangup_after_page=b.page if b.behaviour is Behaviour.HANGUP_AFTER_PAGE else None,
            lost_audio_blocks=b.loss if lossy else 0.0,
        )
        return _Prepared(call, where.route, where.max_calls, keep_received=True)

    def _finish(
        self, claim: queue.Claim, attempt_id: int | None, prepared: _Prepared, outcome: CallOutcome
    ) -> None:
        now = self.clock()
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
                with self.files.committing(s) as written:
                    if not queue.finish(
                        s, claim, self.worker_id, attempt_id, outcome, decision, now
                    ):
                        log.warning(
                            "delivery %d was taken over; outcome dropped", claim.delivery_id
                        )
                        return
                    if received is not None and prepared.local_extension is not None:
                        fax = s.get(Fax, claim.fax_id)
                        assert fax is not None
                        _, published = fax_store.add_received(
                            s,
                            self.files,
                            received,
                            extension_id=prepared.local_extension,
                            remote_ident=prepared.call.ident if prepared.call else None,
                            remote_number=fax.extension.number,
                            now=now,
                        )
                        written.append(published)
            finally:
                call = prepared.call
                if isinstance(call, LineCall) and call.receive_into and not prepared.keep_received:
                    self.files.discard(Path(call.receive_into))
        log.info(
            "delivery %d to %s: %s (%s, %d pages)",
            claim.delivery_id,
            claim.destination,
            decision.status.value,
            outcome.cause.value,
            outcome.pages,
        )
