"""How a SIP fax call's result becomes a dispatcher outcome (pure)."""

from __future__ import annotations

import pytest

from faxline.delivery.policy import Cause
from faxline.fax.events import FaxResult
from faxline.gateway.outbound import outcome_of
from faxline.telephony import Ending, SipFaxResult


def fax(code: int, pages: int = 1) -> FaxResult:
    return FaxResult(
        success=code == 0,
        completion_code=code,
        completion_text="OK" if code == 0 else "The call dropped prematurely",
        pages=pages,
        bit_rate=14400,
        ecm=True,
        local_ident="+15550100210",
        remote_ident="+15550200100",
        bad_rows=0,
        duration_s=23.0,
    )


@pytest.mark.parametrize(
    ("status", "ended", "cause"),
    [
        (486, Ending.REJECTED, Cause.BUSY),
        (600, Ending.REJECTED, Cause.BUSY),
        (408, Ending.NO_ANSWER, Cause.NO_ANSWER),
        (480, Ending.NO_ANSWER, Cause.NO_ANSWER),
        (404, Ending.REJECTED, Cause.INVALID_NUMBER),
        (484, Ending.REJECTED, Cause.INVALID_NUMBER),
        (604, Ending.REJECTED, Cause.INVALID_NUMBER),
        (503, Ending.REJECTED, Cause.UNAVAILABLE),
        (488, Ending.T38_REFUSED, Cause.REJECTED),
        (200, Ending.T38_REFUSED, Cause.REJECTED),
        (200, Ending.MEDIA_ERROR, Cause.UNAVAILABLE),
    ],
)
def test_calls_that_carried_no_fax(status: int, ended: Ending, cause: Cause) -> None:
    outcome = outcome_of(SipFaxResult(None, None, status, "Reason", ended))
    assert outcome.cause is cause
    assert outcome.sip_status == status
    assert outcome.sip_reason is not None and ended.value in outcome.sip_reason


def test_delivered_and_dropped_calls() -> None:
    ok = outcome_of(SipFaxResult(fax(0, 3), "t38", 200, "OK", Ending.COMPLETED))
    assert (ok.cause, ok.pages, ok.transport, ok.remote_ident) == (
        Cause.DELIVERED,
        3,
        "t38",
        "+15550200100",
    )
    dropped = outcome_of(SipFaxResult(fax(49, 1), "audio", 200, "OK", Ending.MEDIA_TIMEOUT))
    assert (dropped.cause, dropped.pages) == (Cause.T30_FAILURE, 1)
    assert dropped.t30_text is not None and "media_timeout" in dropped.t30_text
