"""A bounded pool of conversion worker processes for the asyncio server.

Each worker runs under an address-space limit and each job under a time limit; a worker
that dies or overruns is killed and replaced, and the file it was converting gets a
DocumentError. Long documents are split into page ranges converted by several workers at
once, and the pages are assembled here.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from faxline.documents import images
from faxline.documents.convert import (
    CoverText,
    Job,
    cover_pages,
    finish,
    identify,
    plan_total,
)
from faxline.documents.errors import DocumentError
from faxline.documents.faxtiff import EncodedPage
from faxline.documents.model import ConversionLimits, FaxDocument, InputFile, Resolution
from faxline.documents.office import OfficePool, OfficeSettings, office_kind
from faxline.documents.pageimage import PageImageJob
from faxline.documents.sniff import IMAGE_KINDS
from faxline.documents.worker import Request
from faxline.metrics import registry, relay

MIN_PAGES_PER_JOB = 4
"""Documents shorter than two of these are converted by one worker."""

_DEFAULT_LIMITS = ConversionLimits()
_WORKER_MAIN = "import sys; from faxline.documents.worker import main; main(sys.argv[1:])"


def _worker_env() -> dict[str, str]:
    # One malloc arena per thread and BLAS thread pools would reserve address space that
    # the worker's RLIMIT_AS then counts against the document.
    return {**os.environ, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}


class _WorkerDied(Exception):
    pass


class _WorkerTimedOut(Exception):
    pass


class _Worker:
    """One worker process and its socket; restarted on demand after it is killed.

    Workers are started as fresh interpreters running ``worker.main`` (not with
    multiprocessing's spawn, which would re-import the server's main module).
    """

    def __init__(self, memory_bytes: int) -> None:
        self._memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lifeline: int | None = None  # write end; the worker exits when it closes

    def _ensure(self) -> Connection:
        with self._lock:
            if self._process is None or self._conn is None or self._process.poll() is not None:
                self._stop_locked()
                ours, theirs = socket.socketpair()
                # A worker busy converting does not see its socket close when the server is
                # SIGKILLed; it watches this pipe, whose only writer is us (see faxline.procs).
                lifeline, lifeline_end = os.pipe()
                try:
                    with ours, theirs:
                        process = subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                _WORKER_MAIN,
                                str(theirs.fileno()),
                                str(self._memory_bytes),
                                str(lifeline),
                            ],
                            pass_fds=[theirs.fileno(), lifeline],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            env=_worker_env(),
                        )
                        self._process, self._conn = process, Connection(ours.detach())
                        self._lifeline, lifeline_end = lifeline_end, -1
                finally:
                    os.close(lifeline)
                    if lifeline_end >= 0:
                        os.close(lifeline_end)
            return self._conn

    def call(self, request: Request, timeout: float) -> Any:
        """Send a request and wait for its answer (blocking: run it on a thread)."""
        conn = self._ensure()
        try:
            conn.send(request)
            if not conn.poll(timeout):
                self.kill()
                raise _WorkerTimedOut
            kind, value, counts = conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise _WorkerDied from exc
        relay.add(counts)
        if kind == "error":
            raise value
        return value

    def kill(self) -> None:
        with self._lock:
            self._stop_locked()

    def interrupt(self) -> None:
        """Kill the process only; the thread waiting in ``call`` cleans up after it."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()

    def _stop_locked(self) -> None:
        process, conn, lifeline = self._process, self._conn, self._lifeline
        self._process = self._conn = self._lifeline = None
        if conn is not None:
            conn.close()
        if lifeline is not None:
            os.close(lifeline)
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()


class _IdleWorkers:
    """Idle workers, awaitable from any event loop (an asyncio.Queue is bound to one)."""

    def __init__(self, workers: Sequence[_Worker]) -> None:
        self._lock = threading.Lock()
        self._free = list(workers)
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Worker]]] = deque()

    async def get(self) -> _Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free:
                return self._free.pop()
            waiter: asyncio.Future[_Worker] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
            if waiter.done() and not waiter.cancelled():
                self.put(waiter.result())  # handed over just as we were cancelled
            raise

    def put(self, worker: _Worker) -> None:
        """Give a worker back (from any thread)."""
        while True:
            with self._lock:
                if not self._waiters:
                    self._free.append(worker)
                    return
                loop, waiter = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(self._hand_over, waiter, worker)
                return
            except RuntimeError:  # that waiter's event loop is closed: try the next one
                continue

    def _hand_over(self, waiter: asyncio.Future[_Worker], worker: _Worker) -> None:
        if waiter.done():
            self.put(worker)
        else:
            waiter.set_result(worker)


class ConverterPool:
    """Converts documents in ``workers`` processes, each bounded by ``limits``.

    Use it from asyncio code: ``await pool.convert(files)``. ``close()`` (or leaving a
    ``with`` block) stops the workers.
    """

    def __init__(
        self,
        workers: int = 2,
        limits: ConversionLimits = _DEFAULT_LIMITS,
        office: OfficePool | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a converter pool needs at least one worker")
        self.limits = limits
        # LibreOffice starts only when the first Office document or web page comes.
        self.office = office or OfficePool(1, OfficeSettings(timeout_s=limits.timeout_s))
        self._size = workers
        self._workers = [_Worker(limits.memory_bytes) for _ in range(workers)]
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="faxline-converter")
        self._idle = _IdleWorkers(self._workers)
        self._closed = False

    def __enter__(self) -> ConverterPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker process."""
        self._closed = True
        for worker in self._workers:
            worker.interrupt()  # workers hold no state worth a graceful stop
        self._threads.shutdown(wait=True)
        for worker in self._workers:
            worker.kill()
        self.office.close()

    async def _run(self, request: Request) -> Any:
        if self._closed:
            raise RuntimeError("the converter pool is closed")
        job = request[1]
        idle = self._idle
        worker = await idle.get()
        call = self._threads.submit(worker.call, request, self.limits.timeout_s)
        try:
            return await asyncio.wrap_future(call)
        except _WorkerTimedOut:
            raise DocumentError(
                job.name, f"the conversion took longer than {self.limits.timeout_s:g} s"
            ) from None
        except _WorkerDied:
            raise DocumentError(
                job.name, "the conversion failed (the document needs too much memory or crashed)"
            ) from None
        finally:
            if call.done():
                idle.put(worker)
            else:
                # Cancelled while the worker converts: stop it; its thread then sees the
                # end of the socket, and the worker goes back to the pool once that is done.
                worker.interrupt()
                call.add_done_callback(lambda _: idle.put(worker))

    async def convert(
        self,
        files: Sequence[InputFile],
        *,
        resolution: Resolution = Resolution.FINE,
        cover: CoverText | None = None,
    ) -> FaxDocument:
        """Convert uploaded files, in order, into one multi-page fax TIFF.

        Raises DocumentError naming the first file (in upload order) that cannot be
        converted, including one whose conversion ran out of time or memory.
        """
        started = time.perf_counter()
        result = "error"
        try:
            document = await self._convert(files, resolution, cover)
            result = "ok"
            return document
        finally:
            registry.CONVERSIONS.labels(result).inc()
            registry.CONVERSION_SECONDS.observe(time.perf_counter() - started)

    async def _convert(
        self, files: Sequence[InputFile], resolution: Resolution, cover: CoverText | None
    ) -> FaxDocument:
        limits = self.limits
        jobs: list[Job] = []
        for index, file in enumerate(files):
            name, kind = await asyncio.to_thread(identify, file, index)
            jobs.append(Job(name, kind, file.data, resolution, limits))
        # Office files and web pages become PDFs first, then take the PDF path.
        pdfs = await _gather_in_order(
            [
                asyncio.wrap_future(self.office.submit(job.data, job.kind, job.name))
                for job in jobs
                if office_kind(job.kind)
            ]
        )
        converted = iter(pdfs)
        jobs = [
            Job(job.name, "pdf", next(converted), resolution, limits)
            if office_kind(job.kind)
            else job
            for job in jobs
        ]
        counts = await _gather_in_order([self._count(job) for job in jobs])
        plan_total([(job.name, n or 0) for job, n in zip(jobs, counts, strict=True)], limits)
        chunks: list[Job] = []
        for job, count in zip(jobs, counts, strict=True):
            chunks.extend(self._split(job, count))
        parts = await _gather_in_order([self._run(("convert", chunk)) for chunk in chunks])
        pages: list[EncodedPage] = [page for part in parts for page in part]
        plan_total(_pages_per_file(chunks, parts), limits)
        if cover is not None and pages:
            pages.insert(0, await asyncio.to_thread(cover_pages, cover, len(pages), resolution))
        return await asyncio.to_thread(finish, pages, resolution)

    async def page_image(self, path: str, index: int, width: int) -> bytes:
        """Page `index` (from 0) of the fax TIFF at `path` as a PNG `width` pixels wide."""
        job = PageImageJob(f"page {index + 1}", path, index, width)
        png: bytes = await self._run(("page_image", job))
        return png

    async def _count(self, job: Job) -> int | None:
        """Page count where splitting may pay off (None: convert the file as one job)."""
        if job.kind == "pdf":
            count: int = await self._run(("count", job))
            return count
        if job.kind == "tiff":
            frames = await asyncio.to_thread(images.tiff_frames, job.data, job.name, job.limits)
            return len(frames)
        return 1 if job.kind == "jpeg" or job.kind in IMAGE_KINDS else None

    def _split(self, job: Job, count: int | None) -> list[Job]:
        if count is None or count < 2 * MIN_PAGES_PER_JOB:
            return [job]
        parts = min(self._size, count // MIN_PAGES_PER_JOB)
        step = math.ceil(count / parts)
        return [
            Job(
                job.name,
                job.kind,
                job.data,
                job.resolution,
                job.limits,
                first,
                min(first + step, count),
            )
            for first in range(0, count, step)
        ]


def _pages_per_file(
    chunks: Sequence[Job], parts: Sequence[list[EncodedPage]]
) -> list[tuple[str, int]]:
    return [(chunk.name, len(part)) for chunk, part in zip(chunks, parts, strict=True)]


async def _gather_in_order(calls: Sequence[Any]) -> list[Any]:
    """Await all; raise the first failure in the order given (deterministic messages)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)
