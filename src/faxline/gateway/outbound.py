"""A delivery's call through a SIP trunk, and how its result becomes a dispatcher outcome."""

from __future__ import annotations

import dataclasses

from faxline.delivery.calls import CallOutcome
from faxline.delivery.policy import Cause, cause_of_sip, cause_of_t30
from faxline.delivery.routing import SipRoute
from faxline.fax.errors import FaxDocumentError
from faxline.fax.job import FaxJob
from faxline.sip.digest import Credentials
from faxline.sip.ua import UserAgent
from faxline.sip.uri import SipUri
from faxline.telephony import Ending, MediaSetupError, SipFaxResult, T38Mode, send_fax


@dataclasses.dataclass(frozen=True)
class SipTimers:
    answer_timeout_s: float = 60.0
    media_timeout_s: float = 20.0
    max_duration_s: float = 1800.0


async def call_trunk(
    ua: UserAgent,
    route: SipRoute,
    *,
    document: str,
    ident: str,
    header: str,
    caller_id: str | None,
    media_host: str,
    timers: SipTimers = SipTimers(),
) -> CallOutcome:
    """Send `document` to `route.number` through the route's trunk."""
    trunk = route.trunk
    uri = dataclasses.replace(SipUri.parse(trunk.uri), user=route.number, params={})
    credentials = (
        Credentials(trunk.username, trunk.password)
        if trunk.username is not None and trunk.password is not None
        else None
    )
    try:
        job = FaxJob.send(document, ident=ident, header=header, ecm=True)
    except (FaxDocumentError, ValueError) as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    try:
        result = await send_fax(
            ua,
            str(uri),
            job,
            t38=T38Mode(trunk.t38),
            destination=trunk.next_hop(),
            credentials=credentials,
            caller_id=trunk.caller_id or caller_id,
            media_host=media_host,
            answer_timeout_s=timers.answer_timeout_s,
            media_timeout_s=timers.media_timeout_s,
            max_duration_s=timers.max_duration_s,
        )
    except FaxDocumentError as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    except MediaSetupError as e:
        return CallOutcome(Cause.UNAVAILABLE, sip_reason=f"media: {e}")
    return outcome_of(result)


def outcome_of(result: SipFaxResult) -> CallOutcome:
    """Map a SIP fax call's result onto the dispatcher's causes."""
    fax = result.fax
    if fax is None:
        if result.ended == Ending.NO_ANSWER:
            cause = Cause.NO_ANSWER
        elif result.sip_status is not None and 200 <= result.sip_status < 300:
            # Answered, but no usable media or T.38 refused where it is required.
            cause = Cause.REJECTED if result.ended != Ending.MEDIA_ERROR else Cause.UNAVAILABLE
        else:
            cause = cause_of_sip(result.sip_status or 408)
        return CallOutcome(
            cause,
            sip_status=result.sip_status,
            sip_reason=f"{result.sip_reason or ''} ({result.ended})".strip(),
        )
    cause = cause_of_t30(fax.completion_code)
    if cause is Cause.DELIVERED and not fax.success:
        cause = Cause.T30_FAILURE
    return CallOutcome(
        cause=cause,
        transport=result.transport,
        pages=fax.pages,
        bit_rate=fax.bit_rate or None,
        ecm=fax.ecm,
        bad_rows=fax.bad_rows,
        remote_ident=fax.remote_ident or None,
        t30_code=fax.completion_code,
        t30_text=fax.completion_text
        if result.ended in ("completed", "remote_bye")
        else f"{fax.completion_text} ({result.ended})",
        sip_status=result.sip_status,
        sip_reason=result.sip_reason,
    )
