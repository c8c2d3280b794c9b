"""What a fax call over SIP reports: its T.38 policy in, its result out."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from faxline.fax.events import FaxResult


class T38Mode(enum.StrEnum):
    """Whether a call may, should or must carry the fax over T.38.

    ``prefer``: switch to T.38 when possible (the answering side offers it by re-INVITE,
    the calling side accepts the far end's re-INVITE) and stay on G.711 when the far end
    refuses. ``never``: G.711 only; T.38 re-INVITEs are refused with 488 and T.38 is never
    offered. ``only``: the call fails unless it runs on T.38 (the caller offers an image
    stream alone in its INVITE; the answerer re-INVITEs to T.38 at once, sends silence
    meanwhile, and hangs up when the far end refuses).
    """

    PREFER = "prefer"
    NEVER = "never"
    ONLY = "only"


class Ending(enum.StrEnum):
    """Why a fax call ended (``SipFaxResult.ended``); values are plain strings."""

    COMPLETED = "completed"
    """Our fax session reached T.30 phase E by itself; see ``fax`` for success or failure."""
    REMOTE_BYE = "remote_bye"
    """The far end hung up before our fax session had ended; it was hung up then."""
    MEDIA_TIMEOUT = "media_timeout"
    """No media from the far end for ``media_timeout_s`` (and no BYE): it vanished."""
    MAX_DURATION = "max_duration"
    """The call hit ``max_duration_s`` and we hung up."""
    REJECTED = "rejected"
    """The call was refused (``sip_status`` says how), or had no usable media."""
    NO_ANSWER = "no_answer"
    """No final answer: 408, 480, or our CANCEL after ``answer_timeout_s``."""
    CANCELLED = "cancelled"
    """The caller cancelled the incoming call before we answered."""
    T38_REFUSED = "t38_refused"
    """``T38Mode.ONLY`` and the far end would not run T.38."""
    NO_ACK = "no_ack"
    """We answered but the caller never confirmed with ACK."""
    MEDIA_ERROR = "media_error"
    """The fax engine or the media sockets failed mid-call (logged); a bug or a sick host."""


@dataclass(frozen=True)
class SipFaxResult:
    """The outcome of :func:`send_fax` or :func:`receive_fax`.

    ``fax`` is the T.30 session's result (``None`` when no call was established);
    ``fax.completion_code`` is the T.30 outcome and ``fax.pages`` what was transferred.
    ``transport`` is what the fax ran on at the end: ``"t38"``, ``"audio"``, or ``None``.
    ``sip_status``/``sip_reason``: the final response to our INVITE (sending) or the one
    we gave to the incoming INVITE (receiving). A call we cancelled because nobody
    answered within ``answer_timeout_s`` reports 408 (the far end's 487 is only the echo
    of our CANCEL), so 408 always means "no answer".
    """

    fax: FaxResult | None
    transport: str | None
    sip_status: int | None
    sip_reason: str | None
    ended: str

    @property
    def delivered(self) -> bool:
        """The fax went through: T.30 success with no damaged rows."""
        return self.fax is not None and self.fax.clean
