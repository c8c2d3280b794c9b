"""What happens after an attempt: delivered, retried later, or failed for good (pure).

A cause is either worth another attempt (busy, no answer, a T.30 failure, an interrupted
call) or permanent (no route, the far end rejects the document, the document is bad).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from faxline.store.status import DeliveryStatus


class Cause(enum.StrEnum):
    DELIVERED = "delivered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    T30_FAILURE = "t30_failure"
    UNAVAILABLE = "unavailable"  # the route could not take the call now (SIP 503, capacity)
    INTERRUPTED = "interrupted"  # our process stopped mid-call
    NO_ROUTE = "no_route"
    INVALID_NUMBER = "invalid_number"  # the far network says the number does not exist
    REJECTED = "rejected"
    DOCUMENT_ERROR = "document_error"


PERMANENT = frozenset({Cause.NO_ROUTE, Cause.INVALID_NUMBER, Cause.REJECTED, Cause.DOCUMENT_ERROR})

# SpanDSP T.30 completion codes (spandsp/t30.h) that no retry can fix.
_T30_REJECTED = frozenset({8, 9, 11, 12})  # incompatible, cannot receive, resolution, size
T30_RESOLUTION_REFUSED = 11
"""T30_ERR_NORESSUPPORT: the far end takes none of the document's resolutions."""
_T30_DOCUMENT = frozenset(range(41, 48))  # TIFF/F errors on our side


def cause_of_t30(code: int) -> Cause:
    """The cause behind a T.30 completion code."""
    if code == 0:
        return Cause.DELIVERED
    if code in _T30_REJECTED:
        return Cause.REJECTED
    if code in _T30_DOCUMENT:
        return Cause.DOCUMENT_ERROR
    return Cause.T30_FAILURE


def cause_of_sip(status: int) -> Cause:
    """The cause behind the final SIP answer to an INVITE that set up no call."""
    if status in (486, 600):
        return Cause.BUSY
    if status in (408, 480, 487):
        return Cause.NO_ANSWER
    if status in (404, 484, 604, 410):
        return Cause.INVALID_NUMBER
    if status in (503, 500, 502, 504) or 500 <= status < 600:
        return Cause.UNAVAILABLE
    return Cause.REJECTED  # 401/403/407 (our credentials), 488/606 (media), other 4xx/6xx


@dataclass(frozen=True)
class Retry:
    """How many attempts in all a delivery gets while it ends with this cause, and the wait
    before the next one."""

    attempts: int
    delay_s: float


@dataclass(frozen=True)
class RetryPolicy:
    busy: Retry = Retry(attempts=5, delay_s=120)
    no_answer: Retry = Retry(attempts=3, delay_s=300)
    t30_failure: Retry = Retry(attempts=3, delay_s=120)
    unavailable: Retry = Retry(attempts=5, delay_s=60)
    interrupted: Retry = Retry(attempts=6, delay_s=0)
    _by_cause: dict[Cause, Retry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_by_cause",
            {
                Cause.BUSY: self.busy,
                Cause.NO_ANSWER: self.no_answer,
                Cause.T30_FAILURE: self.t30_failure,
                Cause.UNAVAILABLE: self.unavailable,
                Cause.INTERRUPTED: self.interrupted,
            },
        )

    def for_cause(self, cause: Cause) -> Retry | None:
        return self._by_cause.get(cause)


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    next_attempt_at: dt.datetime | None = None
    failure_reason: str | None = None


def decide(
    cause: Cause,
    *,
    attempts: int,
    cancel_requested: bool,
    policy: RetryPolicy,
    now: dt.datetime,
) -> Decision:
    """The delivery's next state after its `attempts`-th attempt ended with `cause`."""
    if cause is Cause.DELIVERED:
        return Decision(DeliveryStatus.DELIVERED)
    if cancel_requested:
        return Decision(DeliveryStatus.CANCELLED, failure_reason="cancelled")
    retry = policy.for_cause(cause)
    if cause in PERMANENT or retry is None or attempts >= retry.attempts:
        return Decision(DeliveryStatus.FAILED, failure_reason=cause.value)
    return Decision(
        DeliveryStatus.RETRYING,
        next_attempt_at=now + dt.timedelta(seconds=retry.delay_s),
        failure_reason=cause.value,
    )
