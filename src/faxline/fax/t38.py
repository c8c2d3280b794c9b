"""T.30 over T.38: IFP packets in and out (SpanDSP ``t38_terminal_state_t``)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import ClassVar

from faxline.fax import _spandsp
from faxline.fax.errors import FaxSessionClosed, SpanDSPError
from faxline.fax.session import FaxSession

SEQ_MODULO = 0x10000
"""T.38/UDPTL sequence numbers are 16 bits and wrap."""


@dataclass(frozen=True)
class IfpPacket:
    """One T.38 IFP packet with its sequence number.

    ``copies`` is how many times SpanDSP asked for the packet to be sent (its redundancy
    request for important indicators and data); every copy carries the same ``seq``.
    """

    seq: int
    data: bytes
    copies: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.seq < SEQ_MODULO:
            raise ValueError(f"IFP sequence number {self.seq} is outside 0..65535")
        if not self.data:
            raise ValueError("an IFP packet cannot be empty")


class T38FaxSession(FaxSession):
    """A sans-I/O fax session over T.38.

    Hand it received packets with :meth:`receive_packet`, move its clock with
    :meth:`advance` (in 8 kHz samples), and collect packets to send with
    :meth:`packets_to_send`. Sequence numbers of outgoing packets are assigned here,
    counting from 0 and wrapping at 65536.

    Driven from UDPTL::

        session = T38FaxSession(FaxJob.send(path), calling=True)
        # on a timer, with the samples (8 kHz) elapsed since the last tick:
        session.advance(samples)
        for packet in session.packets_to_send():
            udptl.send(packet.seq, packet.data)  # packet.copies times, or with redundancy
        # for each IFP packet taken out of a datagram (primary or redundancy):
        session.receive_packet(IfpPacket(seq, ifp))
    """

    _kind: ClassVar[str] = "t38"

    def _create_state(self) -> int:
        self._outgoing: list[IfpPacket] = []
        self._next_seq = 0
        self.rejected_packets = 0
        # Referenced by the session for as long as the terminal state exists.
        self._tx_packet_cb = _spandsp.T38TxPacketHandler(self._on_tx_packet)
        state: int = self._lib.t38_terminal_init(None, int(self.calling), self._tx_packet_cb, None)
        self._core: int = self._lib.t38_terminal_get_t38_core_state(state)
        self._rx_ifp_packet = self._lib.t38_core_rx_ifp_packet
        self._send_timeout = self._lib.t38_terminal_send_timeout
        return state

    def _get_t30(self) -> int:
        assert self._state is not None
        t30: int = self._lib.t38_terminal_get_t30_state(self._state)
        return t30

    def _logging_states(self) -> list[int]:
        assert self._state is not None
        return [
            self._lib.t38_terminal_get_logging_state(self._state),
            self._lib.t38_core_get_logging_state(self._core),
            self._lib.t30_get_logging_state(self._t30),
        ]

    def _free_state(self, state: int) -> None:
        self._lib.t38_terminal_free(state)

    def _on_tx_packet(self, _core: int, _user: int, buf: int, length: int, count: int) -> int:
        # Runs for every packet, so without the closure of _guard; same rule: never raise.
        try:
            self._outgoing.append(
                IfpPacket(self._next_seq, ctypes.string_at(buf, length), max(count, 1))
            )
            self._next_seq = (self._next_seq + 1) % SEQ_MODULO
        except BaseException as exc:  # re-raised by _leave()
            if self._callback_error is None:
                self._callback_error = exc
        return 0

    def advance(self, samples: int) -> None:
        """Let ``samples`` (at 8 kHz) of time pass: timers run and packets are produced."""
        # The hottest path of a T.38 call: _enter()/_leave() written out.
        state = self._state
        if state is None or self._close_pending:
            raise FaxSessionClosed(f"{type(self).__name__} is closed")
        self._depth += 1
        try:
            self._send_timeout(state, samples)
        finally:
            self._samples += samples
            self._depth -= 1
            if self._depth == 0 and (self._close_pending or self._callback_error is not None):
                self._settle()

    def receive_packet(self, packet: IfpPacket) -> bool:
        """Process one received IFP packet; False if SpanDSP rejected it as malformed."""
        self._enter()
        try:
            self._rx_ifp_packet(self._core, packet.data, len(packet.data), packet.seq)
        except SpanDSPError:
            # Bad bytes from the network must not end the call; SpanDSP has logged why.
            self.rejected_packets += 1
            return False
        finally:
            self._leave()
        return True

    def packets_to_send(self) -> list[IfpPacket]:
        """The packets produced since the last call, oldest first."""
        packets = self._outgoing
        if packets:
            self._outgoing = []
        else:
            packets = []
        return packets
