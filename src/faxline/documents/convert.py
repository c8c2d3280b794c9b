"""Conversion of one document (or a range of its pages) to G4-coded fax pages.

These functions run inside a worker process (see ``pool``) or in-process (see
``convert_documents``); either way all of pdfium's calls stay on one thread, while G4 coding
runs on helper threads (ctypes releases the GIL), so rendering and coding overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faxline.documents import pdf, text
from faxline.documents.errors import DocumentError
from faxline.documents.faxtiff import EncodedPage, assemble_fax_tiff, encode_packed
from faxline.documents.model import ConversionLimits, FaxDocument, InputFile, Resolution
from faxline.documents.office import OfficePool, office_kind
from faxline.documents.sniff import IMAGE_KINDS, Kind, sniff, text_encoding
from faxline.documents.zipcheck import ZIP_KINDS, check_zip

DEFAULT_LIMITS = ConversionLimits()
ACCEPTED = (
    "PDF, TIFF, JPEG, PNG, GIF, BMP, WebP, text, HTML, RTF, Word, Excel, PowerPoint or OpenDocument"
)
_PIPELINE_DEPTH = 4  # pages rendered ahead of the coders: bounds memory


@dataclass(frozen=True)
class Job:
    """One document, or the pages ``first`` to ``stop`` of it (None: all of them)."""

    name: str
    kind: Kind
    data: bytes
    resolution: Resolution
    limits: ConversionLimits
    first: int = 0
    stop: int | None = None


def display_name(file: InputFile, index: int) -> str:
    """The name used in messages: the filename, or "file N" (counting from 1)."""
    return file.filename if file.filename else f"file {index + 1}"


def identify(file: InputFile, index: int) -> tuple[str, Kind]:
    """Name and type of an uploaded file; DocumentError when it is none of the four types."""
    name = display_name(file, index)
    kind = sniff(file.data, file.filename)
    if kind is None:
        raise DocumentError(name, f"the file is not a document faxline takes ({ACCEPTED})")
    if kind in ZIP_KINDS:
        check_zip(file.data, name)
    return name, kind


def _too_many(name: str, limits: ConversionLimits) -> DocumentError:
    return DocumentError(name, f"the document has more than {limits.max_pages} pages")


def count_pages(job: Job) -> int:
    """How many pages the document has (cheap: nothing is rendered)."""
    if job.kind == "pdf":
        doc = pdf.open_pdf(job.data, job.name)
        try:
            count = len(doc)
        finally:
            doc.close()
    elif job.kind == "tiff":
        from faxline.documents import images  # Pillow: imported when an image comes

        count = len(images.tiff_frames(job.data, job.name, job.limits))
    elif job.kind == "jpeg" or job.kind in IMAGE_KINDS:
        count = 1
    else:
        count = len(_layout(job))
    if count == 0 and job.kind != "text":
        raise DocumentError(job.name, "the document has no pages")
    if count > job.limits.max_pages:
        raise _too_many(job.name, job.limits)
    return count


def _layout(job: Job) -> list[list[str]]:
    encoding = text_encoding(job.data, job.name) or "latin-1"
    return text.layout_text(text.decode_text(job.data, encoding), job.limits.max_pages)


def convert_job(job: Job) -> list[EncodedPage]:
    """Convert the job's pages; DocumentError (naming the file) for any fault of the file."""
    try:
        return _encode_all(_packed_pages(job))
    except MemoryError:
        raise DocumentError(job.name, "the document needs too much memory to convert") from None


def _packed_pages(job: Job) -> Iterator[npt.NDArray[np.uint8]]:
    if job.kind == "pdf":
        yield from _pdf_pages(job, job.data)
    elif job.kind == "text":
        laid_out = _layout(job)
        if len(laid_out) > job.limits.max_pages:
            raise _too_many(job.name, job.limits)
        yield from text.render_pages(laid_out, job.resolution)
    elif job.kind == "tiff":
        from faxline.documents import images

        frames = images.tiff_frames(job.data, job.name, job.limits)
        stop = len(frames) if job.stop is None else job.stop
        try:
            yield from images.tiff_pages(
                job.data, job.name, job.resolution, job.limits, range(job.first, stop)
            )
        except (DocumentError, MemoryError):
            raise
        except Exception as exc:  # Pillow raises assorted types on hostile TIFFs
            raise DocumentError(job.name, "the TIFF is corrupt or not supported") from exc
    elif job.kind in IMAGE_KINDS:
        from faxline.documents import images

        try:
            yield images.image_page(job.data, job.name, job.kind, job.resolution, job.limits)
        except (DocumentError, MemoryError):
            raise
        except Exception as exc:  # Pillow raises assorted types on hostile images
            raise DocumentError(job.name, "the image is corrupt or not supported") from exc
    else:
        from faxline.documents import images

        try:
            yield images.jpeg_page(job.data, job.name, job.resolution, job.limits)
        except (DocumentError, MemoryError):
            raise
        except Exception as exc:  # Pillow raises assorted types on hostile JPEGs
            raise DocumentError(job.name, "the JPEG is corrupt or not supported") from exc


def _pdf_pages(job: Job, data: bytes) -> Iterator[npt.NDArray[np.uint8]]:
    doc = pdf.open_pdf(data, job.name)
    try:
        count = len(doc)
        if count == 0:
            raise DocumentError(job.name, "the PDF has no pages")
        if count > job.limits.max_pages:
            raise _too_many(job.name, job.limits)
        stop = count if job.stop is None else min(job.stop, count)
        yield from pdf.render_pages(
            doc, range(job.first, stop), job.resolution, job.name, job.limits.max_pixels
        )
    finally:
        doc.close()


def _encode_all(pages: Iterable[npt.NDArray[np.uint8]]) -> list[EncodedPage]:
    """G4-code pages on a helper thread while the caller's thread renders the next ones."""
    results: list[Future[EncodedPage]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="faxline-g4") as coder:
        try:
            for packed in pages:
                if len(results) >= _PIPELINE_DEPTH:
                    results[-_PIPELINE_DEPTH].result()
                results.append(coder.submit(encode_packed, packed))
        except BaseException:
            for future in results:
                future.cancel()
            raise
        return [future.result() for future in results]


def plan_total(counts: Sequence[tuple[str, int]], limits: ConversionLimits) -> int:
    """Total pages of all files; DocumentError naming the file that goes over the limit."""
    total = 0
    for name, count in counts:
        total += count
        if total > limits.max_pages:
            raise DocumentError(name, f"the fax would have more than {limits.max_pages} pages")
    return total


CoverText = Callable[[int], str]
"""Given the fax's page count (the cover included), the cover page's text."""


def cover_pages(cover: CoverText, document_pages: int, resolution: Resolution) -> EncodedPage:
    """The cover page, drawn by the text renderer; lines past one page are dropped."""
    laid_out = text.layout_text(cover(document_pages + 1), 1)
    first = laid_out[0] if laid_out else []
    (packed,) = text.render_pages([first], resolution)
    return encode_packed(packed)


def finish(pages: Sequence[EncodedPage], resolution: Resolution) -> FaxDocument:
    """Wrap coded pages into the final document (no TIFF when there are no pages)."""
    if not pages:
        return FaxDocument(pages=0, tiff=None)
    return FaxDocument(pages=len(pages), tiff=assemble_fax_tiff(pages, resolution))


def convert_documents(
    files: Sequence[InputFile],
    *,
    resolution: Resolution = Resolution.FINE,
    limits: ConversionLimits = DEFAULT_LIMITS,
    office: OfficePool | None = None,
    cover: CoverText | None = None,
) -> FaxDocument:
    """Convert uploaded files, in order, into one multi-page fax TIFF, in this process.

    Raises DocumentError naming the first file that cannot be converted. No limit on memory
    or time applies here, except to LibreOffice (``office``, or a pool of one instance
    started for these files when one of them needs it); the server uses ``ConverterPool``.
    """
    identified = [identify(file, index) for index, file in enumerate(files)]
    needs_office = any(office_kind(kind) for _, kind in identified)
    own = OfficePool(1) if office is None and needs_office else None
    try:
        jobs = []
        for (name, kind), file in zip(identified, files, strict=True):
            data: bytes = file.data
            if office_kind(kind):
                pool = office or own
                assert pool is not None
                data, kind = pool.submit(data, kind, name).result(), "pdf"
            jobs.append(Job(name, kind, data, resolution, limits))
    finally:
        if own is not None:
            own.close()
    plan_total([(job.name, count_pages(job)) for job in jobs], limits)
    pages: list[EncodedPage] = []
    for job in jobs:
        pages.extend(convert_job(job))
    if cover is not None and pages:
        pages.insert(0, cover_pages(cover, len(pages), resolution))
    return finish(pages, resolution)
