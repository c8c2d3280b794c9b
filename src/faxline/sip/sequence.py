"""16-bit sequence numbers (RTP, UDPTL) extended to unbounded integers."""

from __future__ import annotations


class SequenceUnwrapper:
    """Map 16-bit sequence numbers to a monotonic integer space across wrap-arounds.

    Each number is placed at the extended value closest to the highest one seen so far,
    so a packet that is late by less than half the space (32768) stays in the past.
    """

    def __init__(self) -> None:
        self._highest: int | None = None

    def unwrap(self, sequence: int) -> int:
        """Return the extended value of ``sequence`` (0..65535)."""
        if not 0 <= sequence <= 0xFFFF:
            raise ValueError(f"sequence number {sequence} out of range")
        if self._highest is None:
            self._highest = sequence
            return sequence
        delta = (sequence - self._highest) & 0xFFFF
        extended = self._highest + delta if delta < 0x8000 else self._highest + delta - 0x10000
        self._highest = max(self._highest, extended)
        return extended
