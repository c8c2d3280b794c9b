"""What the audio and T.38 fax sessions share: T.30 set-up, events, results, lifetime.

A session owns one SpanDSP state and every ctypes callback registered with it. The
callbacks are attributes of the session, so they live exactly as long as the C state
that may call them; the state is freed by :meth:`FaxSession.close` (or when the session
is garbage collected), never while SpanDSP is still executing one of our callbacks.
"""

from __future__ import annotations

import abc
import ctypes
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Self

from faxline.fax import _spandsp
from faxline.fax.document import check_document
from faxline.fax.errors import FaxSessionClosed
from faxline.fax.events import Completed, FaxEvent, FaxResult, PageTransferred, PhaseB
from faxline.fax.job import Direction, FaxJob
from faxline.metrics import registry

SAMPLE_RATE = 8000
"""SpanDSP works at 8000 samples per second; session time is counted in samples."""

_log = logging.getLogger("faxline.fax.spandsp")

# SpanDSP severities (logging.h) mapped to Python levels.
_LEVELS = {
    1: logging.ERROR,
    2: logging.WARNING,
    3: logging.WARNING,
    4: logging.INFO,
}

EventHook = Callable[[FaxEvent], None]


class FaxSession(abc.ABC):
    """A T.30 session over SpanDSP; see :class:`AudioFaxSession` and :class:`T38FaxSession`.

    Events are queued and read with :meth:`next_event`. ``on_event``, when given, is also
    called with each event as it happens, from inside SpanDSP's callback: it may call
    :meth:`close` (freeing is then deferred until SpanDSP has returned) but it must not
    raise; an exception it raises is re-raised from the session method that was running.
    ``log_level`` (a SpanDSP severity, 1 = errors ... 5 = protocol flow) routes SpanDSP's
    own log lines to the ``faxline.fax.spandsp`` logger, tagged with ``log_tag``.
    """

    _kind: ClassVar[str]

    def __init__(
        self,
        job: FaxJob,
        *,
        calling: bool | None = None,
        on_event: EventHook | None = None,
        log_level: int = 0,
        log_tag: str | None = None,
    ) -> None:
        if job.direction is Direction.SEND:
            check_document(job.path)
        self.job = job
        self.calling = job.direction is Direction.SEND if calling is None else calling
        self._on_event = on_event
        self._lib = _spandsp.lib()
        self._events: deque[FaxEvent] = deque()
        self._result: FaxResult | None = None
        self._samples = 0
        self._pages = 0
        self._bad_rows = 0
        # >0 while SpanDSP code that can call back into this session is running.
        self._depth = 0
        self._close_pending = False
        self._callback_error: BaseException | None = None
        self._state: int | None = None
        self._state = self._create_state()
        self._t30: int = self._get_t30()
        # Kept as attributes: a collected callback would leave SpanDSP a dangling pointer.
        self._phase_b_cb = _spandsp.PhaseBHandler(self._on_phase_b)
        self._phase_d_cb = _spandsp.PhaseDHandler(self._on_phase_d)
        self._phase_e_cb = _spandsp.PhaseEHandler(self._on_phase_e)
        self._message_cb = _spandsp.MessageHandler(self._on_message)
        # span_log_set_tag keeps the pointer, not a copy: the buffer must outlive the state.
        self._log_tag = ctypes.create_string_buffer(
            (log_tag or job.ident or f"{self._kind}-{job.direction.value}").encode("ascii")
        )
        self._configure_t30()
        self._configure_logging(log_level)

    # -- subclass hooks -------------------------------------------------------------------

    @abc.abstractmethod
    def _create_state(self) -> int:
        """Allocate the SpanDSP state; return its address."""

    @abc.abstractmethod
    def _get_t30(self) -> int:
        """The ``t30_state_t`` inside the state."""

    @abc.abstractmethod
    def _logging_states(self) -> list[int]:
        """Every ``logging_state_t`` inside the state."""

    @abc.abstractmethod
    def _free_state(self, state: int) -> None:
        """Release the SpanDSP state."""

    # -- set-up -----------------------------------------------------------------------------

    def _configure_t30(self) -> None:
        lib, t30, job = self._lib, self._t30, self.job
        lib.t30_set_tx_ident(t30, job.ident.encode("ascii"))
        if job.header:
            lib.t30_set_tx_page_header_info(t30, job.header.encode("ascii"))
        path = job.path.encode()
        if job.direction is Direction.SEND:
            lib.t30_set_tx_file(t30, path, -1, -1)
        else:
            lib.t30_set_rx_file(t30, path, -1)
        lib.t30_set_ecm_capability(t30, int(job.ecm))
        lib.t30_set_supported_compressions(
            t30,
            _spandsp.T30_SUPPORT_T4_1D_COMPRESSION
            | _spandsp.T30_SUPPORT_T4_2D_COMPRESSION
            | _spandsp.T30_SUPPORT_T6_COMPRESSION,
        )
        resolutions = _spandsp.T30_SUPPORT_STANDARD_RESOLUTION
        if job.fine:
            resolutions |= _spandsp.T30_SUPPORT_FINE_RESOLUTION | _spandsp.T30_SUPPORT_R8_RESOLUTION
            if job.superfine:
                resolutions |= _spandsp.T30_SUPPORT_SUPERFINE_RESOLUTION
        lib.t30_set_supported_resolutions(t30, resolutions)
        lib.t30_set_phase_b_handler(t30, self._phase_b_cb, None)
        lib.t30_set_phase_d_handler(t30, self._phase_d_cb, None)
        lib.t30_set_phase_e_handler(t30, self._phase_e_cb, None)

    def _configure_logging(self, level: int) -> None:
        flags = _spandsp.SPAN_LOG_SHOW_TAG | _spandsp.SPAN_LOG_SHOW_PROTOCOL
        for log in self._logging_states():
            self._lib.span_log_set_tag(log, self._log_tag)
            if level > 0:
                self._lib.span_log_set_message_handler(log, self._message_cb)
                self._lib.span_log_set_level(log, level | flags)

    # -- public API -------------------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Simulated time this session has lived, from the samples it was driven with."""
        return self._samples / SAMPLE_RATE

    @property
    def finished(self) -> bool:
        """True once T.30 phase E has been reached (see :attr:`result`)."""
        return self._result is not None

    @property
    def result(self) -> FaxResult | None:
        """The final result, once :attr:`finished`."""
        return self._result

    @property
    def closed(self) -> bool:
        """True once the SpanDSP state has been released."""
        return self._state is None

    def next_event(self) -> FaxEvent | None:
        """The oldest event not yet read, or None."""
        events = self._events
        return events.popleft() if events else None

    def hangup(self) -> FaxResult:
        """The call is gone (the line dropped or the peer hung up): end T.30 now.

        Returns the final result; a session cut off mid-call reports a failure such as
        T.30 code 49 ("The call dropped prematurely"), as does one closed before its end.
        """
        if self._result is None and self._state is not None:
            self._enter()
            try:
                self._lib.t30_terminate(self._t30)
            finally:
                self._leave()
        if self._result is None:
            # SpanDSP ended without calling phase E (it was idle): report the drop.
            self._complete(_spandsp.T30_ERR_CALLDROPPED)
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """Release the SpanDSP state. Safe to call twice, and from inside an event hook."""
        if self._state is None:
            return
        if self._depth > 0:
            # Freeing the state inside one of its own callbacks would pull the floor from
            # under SpanDSP; _leave() frees it once the outermost C call returns.
            self._close_pending = True
            return
        state, self._state = self._state, None
        self._free_state(state)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None and self._depth == 0:
            self.close()

    # -- C call bracketing ----------------------------------------------------------------

    def _enter(self) -> int:
        """Mark the start of a C call that may call back; return the state's address."""
        if self._state is None or self._close_pending:
            raise FaxSessionClosed(f"{type(self).__name__} is closed")
        self._depth += 1
        return self._state

    def _leave(self) -> None:
        """Mark the end of such a call; run deferred work and surface callback errors."""
        self._depth -= 1
        if self._depth == 0 and (self._close_pending or self._callback_error is not None):
            self._settle()

    def _settle(self) -> None:
        """After the outermost C call: free a state closed meanwhile, raise a kept error."""
        if self._close_pending:
            self._close_pending = False
            self.close()
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    # -- callbacks (run inside SpanDSP) -----------------------------------------------------

    def _stats(self) -> _spandsp.T30Stats:
        stats = _spandsp.T30Stats()
        self._lib.t30_get_transfer_statistics(self._t30, ctypes.byref(stats))
        return stats

    def _remote_ident(self) -> str:
        raw: bytes | None = self._lib.t30_get_rx_ident(self._t30)
        return raw.decode("latin-1").strip() if raw else ""

    def _emit(self, event: FaxEvent) -> None:
        self._events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _guard(self, func: Callable[[], Any]) -> None:
        # An exception must not cross back into C; keep it for _leave() to raise.
        try:
            func()
        except BaseException as exc:  # re-raised by _leave()
            if self._callback_error is None:
                self._callback_error = exc

    def _on_phase_b(self, _t30: int, _user: int, frame: int) -> int:
        def handle() -> None:
            stats = self._stats()
            self._emit(
                PhaseB(
                    frame=_spandsp.frame_name(frame),
                    remote_ident=self._remote_ident(),
                    bit_rate=stats.bit_rate,
                    ecm=bool(stats.error_correcting_mode),
                )
            )

        self._guard(handle)
        return _spandsp.T30_ERR_OK

    def _on_phase_d(self, _t30: int, _user: int, _frame: int) -> int:
        def handle() -> None:
            stats = self._stats()
            pages = stats.pages_tx if self.job.direction is Direction.SEND else stats.pages_rx
            if pages <= self._pages:
                return  # phase D without a new page (e.g. a retrain)
            bad_rows = 0 if self.job.direction is Direction.SEND else stats.bad_rows
            self._pages = pages
            self._bad_rows += bad_rows
            self._emit(
                PageTransferred(
                    page=pages,
                    bit_rate=stats.bit_rate,
                    ecm=bool(stats.error_correcting_mode),
                    bad_rows=bad_rows,
                )
            )

        self._guard(handle)
        return _spandsp.T30_ERR_OK

    def _on_phase_e(self, _t30: int, _user: int, code: int) -> None:
        self._guard(lambda: self._complete(code))

    def _complete(self, code: int) -> None:
        if self._result is not None:
            return
        # A session closed before phase E can still report, from what it saw last.
        stats = self._stats() if self._state is not None else _spandsp.T30Stats()
        pages = stats.pages_tx if self.job.direction is Direction.SEND else stats.pages_rx
        self._result = FaxResult(
            success=code == _spandsp.T30_ERR_OK,
            completion_code=code,
            completion_text=_spandsp.completion_text(code),
            pages=max(pages, self._pages),
            bit_rate=stats.bit_rate,
            ecm=bool(stats.error_correcting_mode),
            local_ident=self.job.ident,
            remote_ident=self._remote_ident() if self._state is not None else "",
            bad_rows=self._bad_rows,
            duration_s=self.elapsed_s,
        )
        # Counted where the session runs (a call process relays it to the server).
        side = "sent" if self.job.direction is Direction.SEND else "received"
        registry.T30_COMPLETIONS.labels(str(code), side).inc()
        registry.PAGES.labels(side).inc(self._result.pages)
        self._emit(Completed(self._result))

    def _on_message(self, level: int, text: bytes | None) -> None:
        if text:
            message = text.decode("latin-1", "replace").rstrip()
            _log.log(_LEVELS.get(level & 0xFF, logging.DEBUG), "%s", message)
