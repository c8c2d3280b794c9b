"""Calls over the in-process line (local extensions, the simulator), run in worker processes.

Calls run in processes, not threads: SpanDSP sessions are CPU-bound, and their C state is
best kept away from the server's threads. :func:`place_call` is what a worker runs (plain
values in, plain values out); :class:`LinePlacer` is the dispatcher's placer for such calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from faxline.delivery.calls import CallOutcome, LineCall, outcome_of_fax
from faxline.delivery.policy import Cause
from faxline.fax.errors import FaxDocumentError
from faxline.fax.job import FaxJob
from faxline.fax.line import Impairments, Transport, run_call, run_call_paced

log = logging.getLogger("faxline.dispatcher")


def place_call(plan: LineCall) -> CallOutcome:
    """Run one call over the in-process line to the end and say how it went."""
    if plan.busy:
        return CallOutcome(Cause.BUSY)
    if plan.no_answer:
        return CallOutcome(Cause.NO_ANSWER)
    transport = Transport(plan.transport)
    try:
        sender = FaxJob.send(plan.document, ident=plan.ident, header=plan.header, ecm=plan.ecm)
        receiver = FaxJob.receive(
            plan.receive_into, ident=plan.far_ident, ecm=plan.far_ecm, fine=plan.far_fine
        )
    except (FaxDocumentError, ValueError) as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    impairments = Impairments(
        lost_audio_blocks=plan.lost_audio_blocks,
        lost_packets=plan.lost_packets,
        seed=plan.seed,
        hangup_after_page=plan.hangup_after_page,
    )
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
    got_all = result.receiver.success and os.path.exists(plan.receive_into)
    return outcome_of_fax(
        result.sender,
        transport.value,
        far=result.receiver,
        received=plan.receive_into if got_all else None,
    )


class LinePlacer:
    """Places line calls in a pool of worker processes, at most `workers` at once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    async def place(self, call: LineCall) -> CallOutcome:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), place_call, call)
        except BrokenProcessPool:
            log.error("a call process died")
            self._executor = None
            return CallOutcome(Cause.INTERRUPTED)

    def close(self) -> None:
        """Stop every worker process, calls in progress included."""
        if self._executor is None:
            return
        # concurrent.futures has no public way to stop a running job; a call given back
        # to the queue must not go on sending the fax from its process.
        processes = getattr(self._executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.terminate()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("forkserver")
            )
        return self._executor
