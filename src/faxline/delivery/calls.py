"""One call, as a worker process runs it: plain values in, plain values out.

Calls run in processes, not threads (SpanDSP sessions are CPU-bound and their C state is
best kept away from the server's threads). The in-process line of `faxline.fax.line` is
the telephone network for local extensions and the simulator.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from faxline.delivery.policy import Cause, cause_of_t30
from faxline.fax.errors import FaxDocumentError
from faxline.fax.job import FaxJob
from faxline.fax.line import Impairments, Transport, run_call, run_call_paced


@dataclass(frozen=True)
class CallPlan:
    """Everything a worker needs to place one call (picklable)."""

    document: str  # TIFF to send
    ident: str  # our TSI
    header: str  # page header line
    ecm: bool
    transport: str  # t38 | audio
    receive_into: str  # where the far end (local extension, simulator) writes what it gets
    far_ident: str
    far_ecm: bool = True
    far_fine: bool = True
    busy: bool = False
    no_answer: bool = False
    hangup_after_page: int | None = None
    lost_audio_blocks: float = 0.0
    lost_packets: float = 0.0
    seed: int = 0
    paced: bool = False
    max_duration_s: float = 1800.0


@dataclass(frozen=True)
class CallOutcome:
    cause: Cause
    transport: str | None = None
    pages: int = 0
    bit_rate: int | None = None
    ecm: bool | None = None
    bad_rows: int = 0
    remote_ident: str | None = None
    t30_code: int | None = None
    t30_text: str | None = None
    received: str | None = None  # path of what the far end received, if it got a whole fax
    received_pages: int = 0
    sip_status: int | None = None
    sip_reason: str | None = None


def place_call(plan: CallPlan) -> CallOutcome:
    """Run one call to the end and say how it went."""
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
    tx, rx = result.sender, result.receiver
    cause = cause_of_t30(tx.completion_code)
    got_all = rx.success and cause is Cause.DELIVERED and os.path.exists(plan.receive_into)
    return CallOutcome(
        cause=cause,
        transport=transport.value,
        pages=tx.pages,
        bit_rate=tx.bit_rate or None,
        ecm=tx.ecm,
        bad_rows=max(tx.bad_rows, rx.bad_rows),
        remote_ident=tx.remote_ident or None,
        t30_code=tx.completion_code,
        t30_text=tx.completion_text,
        received=plan.receive_into if got_all else None,
        received_pages=rx.pages,
    )
