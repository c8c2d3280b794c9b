"""The entry point of a conversion worker process: limits itself, then serves jobs."""

from __future__ import annotations

import resource
import sys
from multiprocessing.connection import Connection
from typing import Literal

from faxline.documents.convert import Job, convert_job, count_pages
from faxline.documents.errors import ConverterSetupError, DocumentError
from faxline.documents.text import preload

Request = tuple[Literal["count", "convert"], Job]


def serve(conn: Connection, memory_bytes: int) -> None:
    """Run jobs from ``conn`` until it closes; answers are ("ok", value) or ("error", exc)."""
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
        try:
            value: object = count_pages(job) if what == "count" else convert_job(job)
            answer: tuple[str, object] = ("ok", value)
        except DocumentError as exc:
            answer = ("error", exc)
        except MemoryError:
            answer = ("error", DocumentError(job.name, "the document needs too much memory"))
        except ConverterSetupError as exc:
            answer = ("error", exc)
        except Exception as exc:  # a fault of ours: carried to the parent, which raises it
            answer = ("error", RuntimeError(f"conversion of {job.name} failed: {exc!r}"))
        try:
            conn.send(answer)
        except MemoryError:
            conn.send(("error", DocumentError(job.name, "the document needs too much memory")))


def main(argv: list[str]) -> None:
    """Serve on the inherited socket; ``argv`` is ``[FD, MEMORY_BYTES]`` (see ``pool``)."""
    fd, memory_bytes = int(argv[0]), int(argv[1])
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
