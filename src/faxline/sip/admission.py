"""Who gets an answer, and how often: the screen in front of every server transaction.

UDP sources are trivially spoofed, so anything we send to a source we have not heard from
before may be aimed at a victim. Two rules keep faxline from being a reflection amplifier:

- A stranger (a source the ``trusted`` hook refuses, e.g. not a provisioned trunk) that
  sends an INVITE gets **one** stateless 403: no 100 Trying, no server transaction, so no
  retransmissions of the 403 (a stateful 403 is repeated up to 11 times over 32 s until
  an ACK that a spoofed source never sends). One answer, smaller than the INVITE, is no
  amplification, and a misconfigured real peer still learns why it is refused. Its other
  requests (OPTIONS, a stray BYE) are answered as anyone's are: a non-INVITE transaction
  only repeats its answer when the request is repeated.
- Every source IP has a token bucket: a new request (one that matches no transaction and
  no dialog we hold) costs a token, and without one it is dropped unanswered. Trusted
  sources get a bucket large enough for a trunk placing hundreds of calls at once;
  strangers a small one. Requests inside a dialog we hold are never screened: a far end's
  media gateway may send its BYE from an address no trunk lists.

The buckets live in a bounded table (least recently used source evicted first), so a flood
of spoofed addresses costs memory in proportion to :attr:`SourceLimiter.capacity`, not to
the flood. Time is a parameter, as everywhere in the SIP core.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .message import SipRequest


@dataclass(frozen=True)
class Bucket:
    """A token bucket's shape: ``burst`` tokens at most, refilled at ``rate`` per second."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")


TRUSTED_BUCKET = Bucket(rate=200.0, burst=1000.0)
"""A trunk: hundreds of call set-ups (INVITE, re-INVITE, BYE) within a second or two."""
STRANGER_BUCKET = Bucket(rate=1.0, burst=5.0)
"""Anyone else: enough for an OPTIONS probe or a misdialled call, no more."""


class SourceLimiter:
    """Token buckets per source IP, in a table of at most ``capacity`` sources."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.refused = 0
        # ip -> (tokens, time of the last refill), least recently used first.
        self._table: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, ip: str, bucket: Bucket, now: float) -> bool:
        """Spend one token of ``ip``'s bucket; False (and counted) if there is none."""
        entry = self._table.pop(ip, None)
        if entry is None:
            tokens = bucket.burst
            if len(self._table) >= self.capacity:
                self._table.popitem(last=False)
        else:
            tokens, then = entry
            tokens = min(bucket.burst, tokens + (now - then) * bucket.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        else:
            self.refused += 1
        self._table[ip] = (tokens, now)
        return allowed

    def __len__(self) -> int:
        return len(self._table)


Trusted = Callable[[str], bool]
"""Whether a source IP belongs to a peer we take calls from (a provisioned trunk)."""


class Screening(enum.Enum):
    """What becomes of a new request."""

    ACCEPT = "accept"
    """Create a server transaction and let the user agent answer it."""
    REFUSE = "refuse"
    """Answer :attr:`Admission.refusal` once, statelessly (a stranger's INVITE)."""
    DROP = "drop"
    """Send nothing: the source has spent its tokens."""


class Admission:
    """The policy: which sources are trusted (the hook), their buckets, the refusal.

    Without a hook every source is trusted (a plain user agent, tests).
    """

    def __init__(
        self,
        trusted: Trusted | None = None,
        *,
        refusal: tuple[int, str] = (403, "Forbidden"),
        trusted_bucket: Bucket = TRUSTED_BUCKET,
        stranger_bucket: Bucket = STRANGER_BUCKET,
        limiter: SourceLimiter | None = None,
    ) -> None:
        self.trusted = trusted
        self.refusal = refusal
        self.trusted_bucket = trusted_bucket
        self.stranger_bucket = stranger_bucket
        self.limiter = limiter or SourceLimiter()
        self.refused = 0

    def is_trusted(self, ip: str) -> bool:
        """What the hook says (True without one)."""
        return self.trusted is None or self.trusted(ip)

    def screen(self, request: SipRequest | None, ip: str, now: float) -> Screening:
        """Decide about a new request from ``ip`` (None: a malformed one we would answer 400).

        Spends a token of ``ip``'s bucket whatever the outcome, so a stranger's refusals
        are rate-limited like everything else.
        """
        trusted = self.is_trusted(ip)
        bucket = self.trusted_bucket if trusted else self.stranger_bucket
        if not self.limiter.take(ip, bucket, now):
            return Screening.DROP
        if not trusted and request is not None and request.method == "INVITE":
            self.refused += 1
            return Screening.REFUSE
        return Screening.ACCEPT
