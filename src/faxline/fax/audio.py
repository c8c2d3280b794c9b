"""T.30 over audio: 8 kHz signed 16-bit samples in and out (SpanDSP ``fax_state_t``)."""

from __future__ import annotations

import ctypes
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from faxline.fax.session import FaxSession

Samples = npt.NDArray[np.int16]
"""A block of 8 kHz signed 16-bit linear audio."""


class AudioFaxSession(FaxSession):
    """A sans-I/O fax session over audio.

    Feed it what the far end sent with :meth:`receive_audio` (or :meth:`receive_lost`
    for a block that never arrived) and ask it for what to send with
    :meth:`transmit_audio`. The session's clock is the number of samples received.

    Driven from RTP (20 ms of G.711 per packet)::

        session = AudioFaxSession(FaxJob.receive(path), calling=False)
        # for each RTP packet in sequence order:
        session.receive_audio(g711.decode(payload, Codec.PCMU))
        # for each gap in the sequence numbers (no silence, no PLC):
        session.receive_lost(160 * missing_packets)
        # every 20 ms:
        send(g711.encode(session.transmit_audio(160), Codec.PCMU))
        while (event := session.next_event()) is not None: ...
    """

    _kind: ClassVar[str] = "audio"

    def _create_state(self) -> int:
        self._buffer = (ctypes.c_int16 * 160)()
        self._view: Samples = np.ctypeslib.as_array(self._buffer)
        self._fax_rx = self._lib.fax_rx
        self._fax_tx = self._lib.fax_tx
        state: int = self._lib.fax_init(None, int(self.calling))
        # Without this fax_tx returns short blocks when idle; the line needs full ones.
        self._lib.fax_set_transmit_on_idle(state, 1)
        return state

    def _get_t30(self) -> int:
        assert self._state is not None
        t30: int = self._lib.fax_get_t30_state(self._state)
        return t30

    def _logging_states(self) -> list[int]:
        assert self._state is not None
        return [
            self._lib.fax_get_logging_state(self._state),
            self._lib.t30_get_logging_state(self._t30),
        ]

    def _free_state(self, state: int) -> None:
        self._lib.fax_free(state)

    def _buffers(self, count: int) -> tuple[ctypes.Array[ctypes.c_int16], Samples]:
        # One reusable C buffer (and a numpy view of it) per session: converting a fresh
        # numpy array to a C pointer on every block costs more than SpanDSP's own work.
        if count > len(self._view):
            self._buffer = (ctypes.c_int16 * count)()
            self._view = np.ctypeslib.as_array(self._buffer)
        return self._buffer, self._view

    def receive_audio(self, samples: Samples) -> None:
        """Process a block of received audio (int16 samples at 8 kHz)."""
        count = len(samples)
        buffer, view = self._buffers(count)
        np.copyto(view[:count], samples, casting="safe")
        state = self._enter()
        try:
            self._fax_rx(state, buffer, count)
        finally:
            self._samples += count
            self._leave()

    def receive_lost(self, count: int) -> None:
        """Report ``count`` samples that were lost in transit (not silence: missing)."""
        state = self._enter()
        try:
            self._lib.fax_rx_fillin(state, count)
        finally:
            self._samples += count
            self._leave()

    def transmit_audio(self, count: int) -> Samples:
        """The next ``count`` samples to send; zero-filled if SpanDSP produced fewer."""
        buffer, view = self._buffers(count)
        state = self._enter()
        try:
            produced: int = self._fax_tx(state, buffer, count)
        finally:
            self._leave()
        if produced < count:
            view[produced:count] = 0
        return view[:count].copy()
