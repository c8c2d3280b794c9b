"""The entry point of a conversion worker process: limits itself, then serves jobs."""

from __future__ import annotations

import resource
import sys
from multiprocessing.connection import Connection
from typing import Literal

from faxline.documents.convert import Job, convert_job, count_pages
from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.documents.pageimage import PageImageJob, render_page_image
from faxline.documents.text import preload
from faxline.metrics import registry, relay
from faxline.procs import die_when_closed

Request = tuple[Literal["count", "convert"], Job] | tuple[Literal["page_image"], PageImageJob]


def serve(conn: Connection, memory_bytes: int) -> None:
    """Run jobs from ``conn`` until it closes; answers are ("ok", value, counts) or
    ("error", exc, counts), with what the job counted (:mod:`faxline.metrics.relay`)."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            request: Request | None = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        what, job = request
        before = relay.snapshot()
        try:
            value: object
            if isinstance(job, PageImageJob):
                value = render_page_image(job)
            elif what == "count":
                value = count_pages(job)
            else:
                value = convert_job(job)
                registry.CONVERTED_PAGES.inc(len(value))
            answer: tuple[str, object] = ("ok", value)
        except DocumentError as exc:
            answer = ("error", exc)
        except MemoryError:
            answer = ("error", DocumentError(job.name, "the document needs too much memory"))
        except ConverterSetupError as exc:
            answer = ("error", exc)
        except Exception as exc:  # a fault of ours: carried to the parent, which raises it
            answer = ("error", RuntimeError(f"conversion of {job.name} failed: {exc!r}"))
        counts = relay.since(before)
        try:
            conn.send((*answer, counts))
        except MemoryError:
            conn.send(
                ("error", DocumentError(job.name, "the document needs too much memory"), counts)
            )


def main(argv: list[str]) -> None:
    """Serve on the inherited socket; ``argv`` is ``[FD, MEMORY_BYTES, LIFELINE_FD]`` (see
    ``pool``): the process ends when the lifeline pipe's writer, the server, is gone."""
    fd, memory_bytes = int(argv[0]), int(argv[1])
    if len(argv) > 2:
        die_when_closed(int(argv[2]))
    conn = Connection(fd)
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # Import everything now: a worker too small to hold the converter dies here, at once,
    # instead of failing half-way through someone's document.
    preload()
    import faxline.documents.images  # noqa: F401  (Pillow)

    serve(conn, 0)


if __name__ == "__main__":
    main(sys.argv[1:])
