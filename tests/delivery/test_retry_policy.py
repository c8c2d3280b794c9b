"""Retry decisions (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from faxline.delivery.policy import Cause, Retry, RetryPolicy, cause_of_sip, cause_of_t30, decide
from faxline.store.status import DeliveryStatus, FaxStatus, fax_status

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
POLICY = RetryPolicy(busy=Retry(3, 60), no_answer=Retry(2, 300))


def test_retry_until_attempts_run_out() -> None:
    d = decide(Cause.BUSY, attempts=1, cancel_requested=False, policy=POLICY, now=NOW)
    assert d.status is DeliveryStatus.RETRYING
    assert d.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert d.failure_reason == "busy"
    d = decide(Cause.BUSY, attempts=3, cancel_requested=False, policy=POLICY, now=NOW)
    assert (d.status, d.failure_reason) == (DeliveryStatus.FAILED, "busy")


@pytest.mark.parametrize(
    "cause", [Cause.NO_ROUTE, Cause.INVALID_NUMBER, Cause.REJECTED, Cause.DOCUMENT_ERROR]
)
def test_permanent_causes_fail_at_once(cause: Cause) -> None:
    d = decide(cause, attempts=1, cancel_requested=False, policy=POLICY, now=NOW)
    assert (d.status, d.failure_reason) == (DeliveryStatus.FAILED, cause.value)


def test_cancel_wins_over_retry_but_not_over_delivery() -> None:
    d = decide(Cause.T30_FAILURE, attempts=1, cancel_requested=True, policy=POLICY, now=NOW)
    assert d.status is DeliveryStatus.CANCELLED
    d = decide(Cause.DELIVERED, attempts=1, cancel_requested=True, policy=POLICY, now=NOW)
    assert d.status is DeliveryStatus.DELIVERED


def test_causes_of_codes() -> None:
    assert cause_of_t30(0) is Cause.DELIVERED
    assert cause_of_t30(11) is Cause.REJECTED  # far end cannot receive at this resolution
    assert cause_of_t30(49) is Cause.T30_FAILURE  # call dropped
    assert cause_of_t30(41) is Cause.DOCUMENT_ERROR
    assert [cause_of_sip(s) for s in (486, 600, 408, 480, 404, 484, 604, 503, 488, 403)] == [
        Cause.BUSY,
        Cause.BUSY,
        Cause.NO_ANSWER,
        Cause.NO_ANSWER,
        Cause.INVALID_NUMBER,
        Cause.INVALID_NUMBER,
        Cause.INVALID_NUMBER,
        Cause.UNAVAILABLE,
        Cause.REJECTED,
        Cause.REJECTED,
    ]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], FaxStatus.RECEIVED),
        (["queued", "queued"], FaxStatus.QUEUED),
        (["queued", "retrying"], FaxStatus.SENDING),
        (["delivered", "sending"], FaxStatus.SENDING),
        (["delivered", "delivered"], FaxStatus.SENT),
        (["delivered", "failed"], FaxStatus.PARTIALLY_SENT),
        (["failed", "cancelled"], FaxStatus.FAILED),
        (["cancelled"], FaxStatus.CANCELLED),
    ],
)
def test_fax_status(statuses: list[str], expected: FaxStatus) -> None:
    assert fax_status(statuses) is expected
