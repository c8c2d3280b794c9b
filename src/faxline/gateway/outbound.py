"""A delivery's call through a SIP trunk, and how its result becomes a dispatcher outcome."""

from __future__ import annotations

import dataclasses

from faxline.delivery.calls import CallOutcome, TrunkCall, outcome_of_fax
from faxline.delivery.policy import Cause, cause_of_sip
from faxline.fax.errors import FaxDocumentError, FaxOptionError
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
    ua: UserAgent, call: TrunkCall, *, media_host: str, timers: SipTimers = SipTimers()
) -> CallOutcome:
    """Send the call's document to its number through its trunk."""
    trunk = call.trunk
    uri = dataclasses.replace(SipUri.parse(trunk.uri), user=call.number, params={})
    credentials = (
        Credentials(trunk.username, trunk.password)
        if trunk.username is not None and trunk.password is not None
        else None
    )
    try:
        job = FaxJob.send(call.document, ident=call.ident, header=call.header, ecm=True)
        result = await send_fax(
            ua,
            str(uri),
            job,
            t38=T38Mode(trunk.t38),
            destination=trunk.next_hop(),
            credentials=credentials,
            caller_id=trunk.caller_id or call.caller_id,
            media_host=media_host,
            answer_timeout_s=timers.answer_timeout_s,
            media_timeout_s=timers.media_timeout_s,
            max_duration_s=timers.max_duration_s,
        )
    except (FaxDocumentError, FaxOptionError) as e:
        return CallOutcome(Cause.DOCUMENT_ERROR, t30_text=str(e))
    except MediaSetupError as e:
        return CallOutcome(Cause.UNAVAILABLE, sip_reason=f"media: {e}")
    return outcome_of(result)


def outcome_of(result: SipFaxResult) -> CallOutcome:
    """Map a SIP fax call's result onto the dispatcher's causes."""
    fax = result.fax
    if fax is None:
        if result.ended == Ending.NO_ANSWER or result.sip_status is None:
            cause = Cause.NO_ANSWER
        elif 200 <= result.sip_status < 300:
            # Answered, but no usable media, or T.38 refused where it is required.
            cause = Cause.UNAVAILABLE if result.ended == Ending.MEDIA_ERROR else Cause.REJECTED
        else:
            cause = cause_of_sip(result.sip_status)
        return CallOutcome(
            cause,
            sip_status=result.sip_status,
            sip_reason=f"{result.sip_reason or ''} ({result.ended})".strip(),
        )
    normal = result.ended in (Ending.COMPLETED, Ending.REMOTE_BYE)
    outcome = outcome_of_fax(
        fax,
        result.transport or "audio",
        note=None if normal else str(result.ended),
        sip_status=result.sip_status,
        sip_reason=result.sip_reason,
    )
    # The T.30 session runs from the answer on, in real time on a SIP call.
    return dataclasses.replace(outcome, talk_s=fax.duration_s)
