"""Calls over the in-process line (local extensions, the simulator), run in call processes.

Calls run in processes, not threads: SpanDSP sessions are CPU-bound, and their C state is
best kept away from the server's threads. :func:`place_call` is what a call process runs
(plain values in, plain values out); :class:`LinePlacer` is the dispatcher's placer for
such calls.

Each call has a process of its own (forked by multiprocessing's forkserver, which has the
call code preloaded), so that stopping a call is killing its process: the dispatcher does
that when it loses the lease. A call process also ends by itself when the server ends,
even by SIGKILL: it watches a lifeline pipe whose only writer is the server
(:func:`faxline.procs.die_when_closed`). A call that outlived its server would deliver a
fax that the next server sends again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from faxline.delivery.calls import CallOutcome, LineCall, outcome_of_fax
from faxline.delivery.policy import Cause
from faxline.fax.errors import FaxDocumentError
from faxline.fax.job import FaxJob
from faxline.fax.line import Impairments, Transport, run_call, run_call_paced
from faxline.metrics import relay
from faxline.procs import die_when_closed, die_with_parent

log = logging.getLogger("faxline.dispatcher")


def place_call(plan: LineCall) -> CallOutcome:
    """Run one call over the in-process line to the end and say how it went.

    The far end receives into a ``.part`` file, renamed to ``plan.receive_into`` only when
    the whole fax arrived: a call cut short leaves nothing that looks received.
    """
    if plan.busy:
        return CallOutcome(Cause.BUSY)
    if plan.no_answer:
        return CallOutcome(Cause.NO_ANSWER)
    transport = Transport(plan.transport)
    partial = f"{plan.receive_into}.part"
    try:
        sender = FaxJob.send(plan.document, ident=plan.ident, header=plan.header, ecm=plan.ecm)
        receiver = FaxJob.receive(
            partial,
            ident=plan.far_ident,
            ecm=plan.far_ecm,
            fine=plan.far_fine,
            superfine=plan.far_superfine,
        )
    except (FaxDocumentError, ValueError) as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    impairments = Impairments(
        lost_audio_blocks=plan.lost_audio_blocks,
        lost_packets=plan.lost_packets,
        seed=plan.seed,
        hangup_after_page=plan.hangup_after_page,
    )
    answered = time.monotonic()
    try:
        if plan.paced:
            result = asyncio.run(
                run_call_paced(
                    sender,
                    receiver,
                    transport=transport,
                    impairments=impairments,
                    max_duration_s=plan.max_duration_s,
                )
            )
        else:
            result = run_call(
                sender,
                receiver,
                transport=transport,
                impairments=impairments,
                max_duration_s=plan.max_duration_s,
            )
    except FaxDocumentError as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    got_all = result.receiver.success and os.path.exists(partial)
    if got_all:
        os.replace(partial, plan.receive_into)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    outcome = outcome_of_fax(
        result.sender,
        transport.value,
        far=result.receiver,
        received=plan.receive_into if got_all else None,
    )
    # The line answers at once: the whole call is talk time.
    return dataclasses.replace(outcome, talk_s=time.monotonic() - answered)


def _preloaded() -> list[str]:
    """What the forkserver imports once, so that starting a call process is cheap.

    Each child re-runs the parent's main module (multiprocessing's fix-up of ``__main__``:
    ``faxline.cli``, the ``faxline`` script, a bench script), which costs a second or more
    of imports per call unless the forkserver has them already. So it imports what the
    parent runs from: the main module when run with ``-m``, and every faxline module the
    parent has loaded (with them the libraries they use: SQLAlchemy, FastAPI, uvicorn).
    """
    names = sorted(n for n in sys.modules if n == "faxline" or n.startswith("faxline."))
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and not spec.name.endswith("__main__"):
        names.append(spec.name)
    return names


_CONTEXT = multiprocessing.get_context("forkserver")


def _call_process(plan: LineCall, results: Connection, lifeline: Connection) -> None:
    """The body of a call process: the call, its outcome sent back, or an exit if orphaned."""
    die_when_closed(lifeline.fileno())
    die_with_parent()  # the forkserver's child: ends with it too
    before = relay.snapshot()
    outcome = place_call(plan)
    # What the call counted here (T.30 codes, pages) goes back with its outcome.
    results.send((outcome, relay.since(before)))


class LinePlacer:
    """Places line calls, each in a process of its own, at most `workers` at once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._slots: asyncio.Semaphore | None = None
        self._running: set[BaseProcess] = set()

    async def place(self, call: LineCall) -> CallOutcome:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        async with self._slots:
            return await self._run(call)

    async def _run(self, call: LineCall) -> CallOutcome:
        results, results_end = _CONTEXT.Pipe(duplex=False)
        lifeline, lifeline_end = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(
            target=_call_process, args=(call, results_end, lifeline), daemon=True
        )
        started = False
        try:
            # Handing the call to the forkserver blocks a little (and starts it the first time).
            await asyncio.to_thread(self._start, process)
            started = True
            results_end.close()
            lifeline.close()
            return await self._outcome(results)
        except asyncio.CancelledError:
            if started:
                process.kill()
            raise
        finally:
            # The process, if it still runs (or is still being started), ends on this too.
            lifeline_end.close()
            results.close()
            if started:
                self._running.discard(process)
                await asyncio.to_thread(process.join)
                process.close()

    def _start(self, process: BaseProcess) -> None:
        _CONTEXT.set_forkserver_preload(_preloaded())  # used when the forkserver starts
        process.start()
        self._running.add(process)

    async def _outcome(self, results: Connection) -> CallOutcome:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(results.fileno(), readable)
        try:
            await ready
        finally:
            loop.remove_reader(results.fileno())
        try:
            outcome, counts = results.recv()
        except EOFError:
            log.error("a call process died")
            return CallOutcome(Cause.INTERRUPTED)
        assert isinstance(outcome, CallOutcome)
        relay.add(counts)
        return outcome

    def close(self) -> None:
        """Stop every call process, calls in progress included."""
        for process in list(self._running):
            with contextlib.suppress(Exception):
                process.kill()
