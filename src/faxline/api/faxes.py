"""`/uapi/faxes/{userId}/{extension}`: Create Faxes, list, read, cancel, document."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from faxline.api.errors import ApiError, api_error
from faxline.api.jsonlimits import nesting_depth
from faxline.api.multipart import Part, read_parts
from faxline.api.schemas import CREATE_FAX_BODY, CREATE_FAX_RESPONSES
from faxline.api.state import AppState
from faxline.api.views import fax_view
from faxline.auth.context import Principal
from faxline.auth.errors import FaxNotEnabled, NotFound
from faxline.auth.tokens import authenticate, bearer_value
from faxline.delivery.submit import COVER_LIMITS, CoverSender, cover_text, organization_of, submit
from faxline.directory.resolve import (
    ExtensionInfo,
    UserInfo,
    resolve_extension,
    resolve_recipients,
)
from faxline.documents import InputFile, Resolution
from faxline.documents.filenames import clean_filename, content_disposition
from faxline.documents.pdfexport import PdfExportError
from faxline.metrics import registry
from faxline.store import faxes as fax_store
from faxline.store.blobs import BlobMissing, BlobReader, BlobStore, document_pdf
from faxline.store.models import Fax

if TYPE_CHECKING:
    from faxline.documents.convert import CoverText

router = APIRouter(prefix="/uapi/faxes")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.faxline
    return state


def _token_of(request: Request) -> str | None:
    return bearer_value(request.headers.get("authorization")) or bearer_value(
        request.query_params.get("accessRequestToken")
    )


@dataclass(frozen=True)
class _Target:
    principal: Principal
    user: UserInfo
    extension: ExtensionInfo


async def _target(request: Request, user_id: str, extension: str) -> _Target:
    state = _state(request)
    token = _token_of(request)

    def work() -> _Target:
        with state.sessions() as session:
            principal = authenticate(session, token, state.clock())
            user, ext = resolve_extension(session, principal, user_id, extension)
            return _Target(principal, user, ext)

    return await run_in_threadpool(work)


# The `request` part holds a few recipients: far below these, and never deep.
MAX_REQUEST_BYTES = 64 * 1024
MAX_REQUEST_DEPTH = 16
# Query numbers end up in SQL as 64-bit integers; larger ones would be a 500 there.
MAX_QUERY_INT = 2**31 - 1


def _recipients_of(parts: list[Part], max_recipients: int) -> list[str]:
    requests = [p for p in parts if p.name == "request"]
    if not requests:
        raise ApiError(400, "fx_recipients_invalid", "the request part with recipients is missing")
    if len(requests) > 1:
        raise ApiError(400, "request_invalid", "the body has more than one request part")
    data = requests[0].data
    if len(data) > MAX_REQUEST_BYTES:
        raise ApiError(
            400,
            "request_invalid",
            f"the request part is {len(data)} bytes; at most {MAX_REQUEST_BYTES} are allowed",
        )
    try:
        text = data.decode("utf-8")
        if nesting_depth(text) > MAX_REQUEST_DEPTH:
            raise ApiError(
                400,
                "request_invalid",
                f"the request part nests deeper than {MAX_REQUEST_DEPTH} levels",
            )
        payload: Any = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, "request_invalid", f"the request part is not JSON: {e}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request_invalid", "the request part must be a JSON object")
    recipients = payload.get("recipients")
    if recipients is None:
        raise ApiError(400, "fx_recipients_invalid", "recipients are missing")
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise ApiError(400, "fx_recipients_invalid", "recipients must be a list of strings")
    check_recipient_count(recipients, max_recipients)
    return recipients


def check_recipient_count(recipients: list[str], max_recipients: int) -> None:
    """The API's limits on recipients, shared by the web fax center's form."""
    if not recipients:
        raise ApiError(400, "fx_recipients_invalid", "recipients are empty")
    if len(recipients) > max_recipients:
        raise ApiError(
            400,
            "fx_recipients_invalid",
            f"{len(recipients)} recipients given; at most {max_recipients} are allowed",
        )


def check_file_count(count: int, max_files: int) -> None:
    """The API's limits on files, shared by the web fax center's form."""
    if count == 0:
        raise ApiError(400, "fx_file_invalid", "no files part: nothing to send")
    if count > max_files:
        raise ApiError(
            400,
            "fx_max_files_reached",
            f"{count} files given; at most {max_files} can be sent in one fax",
        )


def input_files(named: list[tuple[str | None, bytes]]) -> list[InputFile]:
    """Uploaded files as the converter takes them, their names cleaned (path parts, control
    characters, length) before anything uses them."""
    return [
        InputFile(filename=clean_filename(name, i) if name else None, data=data)
        for i, (name, data) in enumerate(named)
    ]


def _cover_of(parts: list[Part]) -> dict[str, str] | None:
    """The optional ``cover`` of the request part (already known to be a JSON object)."""
    payload: Any = json.loads(next(p for p in parts if p.name == "request").data.decode("utf-8"))
    return check_cover(payload.get("cover"))


def check_cover(cover: object) -> dict[str, str] | None:
    """A cover as Create Faxes takes it (subject, notes, to, from: strings within their
    limits), or None for none; ApiError `request_invalid` naming the field otherwise.
    The web fax center's send form checks its cover fields with this too."""
    if cover is None:
        return None
    if not isinstance(cover, dict):
        raise ApiError(400, "request_invalid", "cover must be a JSON object")
    unknown = sorted(set(cover) - set(COVER_LIMITS))
    if unknown:
        raise ApiError(
            400,
            "request_invalid",
            f"cover has unknown fields {unknown}; it takes " + ", ".join(COVER_LIMITS),
        )
    for key, value in cover.items():
        if not isinstance(value, str):
            raise ApiError(400, "request_invalid", f"cover.{key} must be a string")
        if len(value) > COVER_LIMITS[key]:
            raise ApiError(
                400,
                "request_invalid",
                f"cover.{key} is longer than {COVER_LIMITS[key]} characters",
            )
    return dict(cover)


def _resolution_of(parts: list[Part], default: str) -> Resolution:
    """The optional ``resolution`` of the request part, else the server's default."""
    payload: Any = json.loads(next(p for p in parts if p.name == "request").data.decode("utf-8"))
    value = payload.get("resolution")
    if value is None:
        return Resolution(default)
    try:
        return Resolution(value)
    except ValueError:
        names = ", ".join(r.value for r in Resolution)
        raise ApiError(
            400, "request_invalid", f"resolution must be one of {names}, not {json.dumps(value)}"
        ) from None


def _files_of(parts: list[Part], max_files: int) -> list[InputFile]:
    files = [p for p in parts if p.name == "files"]
    check_file_count(len(files), max_files)
    return input_files([(p.filename, p.data) for p in files])


async def send_fax(
    state: AppState,
    user_id: int,
    extension_id: int,
    recipients: list[tuple[str, str]],
    inputs: list[InputFile],
    *,
    cover: CoverText | None = None,
    resolution: Resolution | None = None,
) -> fax_store.NewFax | None:
    """Convert the documents and queue one delivery per recipient (as `(given,
    destination)`): Create Faxes after its checks, shared by the API and the web fax center.
    None when the documents hold no pages (nothing is stored). Raises DocumentError.
    ``resolution`` defaults to the server's (`FAXLINE_RESOLUTION`)."""
    fax = await submit(
        state.sessions,
        state.files,
        state.converter,
        resolution=resolution or Resolution(state.settings.resolution),
        clock=state.clock,
        user_id=user_id,
        extension_id=extension_id,
        recipients=recipients,
        inputs=inputs,
        cover=cover,
        in_thread=run_in_threadpool,
    )
    if fax is not None:
        state.queued()
    return fax


@router.post(
    "/{user_id}/{extension}",
    response_model=None,
    responses=CREATE_FAX_RESPONSES,
    openapi_extra=CREATE_FAX_BODY,
)
async def create_fax(request: Request, user_id: str, extension: str) -> Response:
    """Create Faxes: store the documents as fax pages and queue one delivery per recipient."""
    started = time.perf_counter()
    status = 500
    try:
        response = await _create_fax(request, user_id, extension)
        status = response.status_code
        return response
    except Exception as e:
        mapped = api_error(e)
        status = mapped.status if mapped is not None else 500
        raise
    finally:
        registry.CREATE_FAX_SECONDS.labels(str(status)).observe(time.perf_counter() - started)


async def _create_fax(request: Request, user_id: str, extension: str) -> Response:
    state = _state(request)
    settings = state.settings
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise ApiError(
            413, "request_too_large", f"the body is larger than {settings.max_upload_bytes} bytes"
        )
    # Who asks and for which extension is settled before a byte of the body is read: a
    # stranger's upload costs a database query, not 25 MiB (401, 404, 403 come first).
    token = _token_of(request)

    def authorize() -> _Target:
        with state.sessions() as session:
            principal = authenticate(session, token, state.clock())
            user, ext = resolve_extension(session, principal, user_id, extension)
            if not ext.fax_enabled:
                raise FaxNotEnabled(f"fax is not enabled on extension {ext.number}")
            return _Target(principal, user, ext)

    target = await run_in_threadpool(authorize)
    parts = await read_parts(
        request.headers.get("content-type"),
        request.stream(),
        max_bytes=settings.max_upload_bytes,
        max_parts=settings.max_files + 16,
    )
    given = _recipients_of(parts, settings.max_recipients)
    cover = _cover_of(parts)
    resolution = _resolution_of(parts, settings.resolution)

    def classify() -> tuple[list[tuple[str, str]], tuple[str, str | None]]:
        organization_id = target.extension.organization_id
        with state.sessions() as session:
            found = resolve_recipients(session, organization_id, given)
            organization: tuple[str, str | None] = ("", None)
            if cover is not None:  # only then: the plain request stays two trips
                organization = organization_of(session, organization_id)
        return [(r.given, r.destination) for r in found], organization

    recipients, organization = await run_in_threadpool(classify)
    inputs = _files_of(parts, settings.max_files)

    cover_page = (
        None
        if cover is None
        else cover_text(
            cover,
            organization,
            CoverSender.of(target.user, target.extension),
            given,
            state.clock(),
        )
    )
    fax = await send_fax(
        state,
        target.user.id,
        target.extension.id,
        recipients,
        inputs,
        cover=cover_page,
        resolution=resolution,
    )
    if fax is None:
        return Response(status_code=204)
    return JSONResponse({"id": fax.id, "uid": fax.uid})


@router.get("/{user_id}/{extension}")
async def list_faxes(
    request: Request,
    user_id: str,
    extension: str,
    start_index: Annotated[int, Query(alias="startIndex", ge=0, le=MAX_QUERY_INT)] = 0,
    count: Annotated[int, Query(ge=1, le=4999)] = 100,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
) -> JSONResponse:
    """The extension's faxes, newest first, in UAPI's list shape."""
    state = _state(request)
    target = await _target(request, user_id, extension)

    def work() -> dict[str, Any]:
        with state.sessions() as session:
            total, rows = fax_store.list_for_extension(
                session, target.extension.id, direction=direction, start=start_index, count=count
            )
            entries = [fax_view(f) for f in rows]
        return {
            "paging": {
                "startIndex": start_index,
                "itemsPerPage": len(entries),
                "totalResults": total,
            },
            "entry": entries,
        }

    return JSONResponse(await run_in_threadpool(work))


async def _fax(request: Request, user_id: str, extension: str, fax_id: str) -> tuple[_Target, Fax]:
    state = _state(request)
    target = await _target(request, user_id, extension)
    if not (fax_id.isascii() and fax_id.isdigit()) or len(fax_id) > 18:
        raise NotFound(f"fax {fax_id!r} not found")

    def work() -> Fax:
        with state.sessions() as session:
            fax = fax_store.get_for_extension(session, target.extension.id, int(fax_id))
            if fax is None:
                raise NotFound(f"fax {fax_id} not found")
            return fax

    return target, await run_in_threadpool(work)


@router.get("/{user_id}/{extension}/{fax_id}")
async def get_fax(request: Request, user_id: str, extension: str, fax_id: str) -> JSONResponse:
    """One fax, with its deliveries (outgoing) or its sender (incoming)."""
    _, fax = await _fax(request, user_id, extension, fax_id)
    return JSONResponse(fax_view(fax))


@router.delete("/{user_id}/{extension}/{fax_id}")
async def delete_fax(request: Request, user_id: str, extension: str, fax_id: str) -> Response:
    """Cancel an outgoing fax's unfinished deliveries; delete a received fax."""
    state = _state(request)
    _, fax = await _fax(request, user_id, extension, fax_id)

    def work() -> dict[str, Any] | None:
        with state.sessions() as session:
            row = fax_store.get_for_extension(session, fax.extension_id, fax.id)
            if row is None:
                raise NotFound(f"fax {fax_id} not found")
            if row.direction == "in":
                fax_store.delete_incoming(session, state.files, row)
                return None
            fax_store.cancel(session, row, state.clock())
            return fax_view(row)

    view = await run_in_threadpool(work)
    return Response(status_code=204) if view is None else JSONResponse(view)


@router.get("/{user_id}/{extension}/{fax_id}/document")
async def get_document(
    request: Request,
    user_id: str,
    extension: str,
    fax_id: str,
    format: Annotated[str, Query(pattern="^(tiff|pdf)$")] = "tiff",
) -> Response:
    """The fax as transmitted (or received): TIFF, or PDF with `?format=pdf`."""
    state = _state(request)
    _, fax = await _fax(request, user_id, extension, fax_id)
    return await document_response(state.files, fax.document, fax.id, format)


async def document_response(blobs: BlobStore, name: str, fax_id: int, format: str) -> Response:
    """A fax's TIFF as it is stored, or as a PDF built page by page from the stored G4 data
    while it is sent (one page in memory): the API's download and the web fax center's.
    Both stream from the blob store a chunk at a time (a file where blobs are files)."""
    if format == "tiff":
        tiff_name = content_disposition(f"fax-{fax_id}.tif")
        path = blobs.file_path(name)
        if path is not None and path.exists():
            return FileResponse(
                path, media_type="image/tiff", headers={"Content-Disposition": tiff_name}
            )
        try:
            reader = await run_in_threadpool(blobs.open, name)
        except BlobMissing:
            raise _missing(fax_id) from None
        return StreamingResponse(
            _stream(reader),
            media_type="image/tiff",
            headers={"Content-Disposition": tiff_name, "Content-Length": str(reader.size)},
        )
    chunks = document_pdf(blobs, name)
    try:
        first = await run_in_threadpool(next, chunks)
    except BlobMissing:
        raise _missing(fax_id) from None
    except PdfExportError as e:
        raise ApiError(
            500, "internal_server_error", f"the document of fax {fax_id} cannot be read: {e}"
        ) from None
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"fax-{fax_id}.pdf")},
    )


def _missing(fax_id: int) -> ApiError:
    return ApiError(500, "internal_server_error", f"the document of fax {fax_id} is missing")


def _stream(reader: BlobReader) -> Iterator[bytes]:
    """The blob's chunks; the reader (a database connection) is closed at the end, or when
    the response stops early (the generator is closed)."""
    with reader:
        yield from reader.chunks()
