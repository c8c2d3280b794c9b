"""`/uapi/faxes/{userId}/{extension}`: Create Faxes, list, read, cancel, document."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image, ImageSequence
from starlette.concurrency import run_in_threadpool

from faxline.api.errors import ApiError, api_error
from faxline.api.multipart import BodyError, BodyTooLarge, Part, read_parts
from faxline.api.state import AppState
from faxline.api.views import fax_view
from faxline.auth.context import Principal
from faxline.auth.errors import FaxNotEnabled, NotFound
from faxline.auth.tokens import authenticate, bearer_value
from faxline.directory.resolve import (
    ExtensionInfo,
    UserInfo,
    resolve_extension,
    resolve_recipients,
)
from faxline.documents import InputFile, Resolution
from faxline.documents.sniff import sniff
from faxline.store import faxes as fax_store
from faxline.store.models import Fax

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


def _recipients_of(parts: list[Part], max_recipients: int) -> list[str]:
    requests = [p for p in parts if p.name == "request"]
    if not requests:
        raise ApiError(400, "fx_recipients_invalid", "the request part with recipients is missing")
    if len(requests) > 1:
        raise ApiError(400, "request_invalid", "the body has more than one request part")
    try:
        payload: Any = json.loads(requests[0].data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, "request_invalid", f"the request part is not JSON: {e}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request_invalid", "the request part must be a JSON object")
    recipients = payload.get("recipients")
    if recipients is None:
        raise ApiError(400, "fx_recipients_invalid", "recipients are missing")
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise ApiError(400, "fx_recipients_invalid", "recipients must be a list of strings")
    if not recipients:
        raise ApiError(400, "fx_recipients_invalid", "recipients are empty")
    if len(recipients) > max_recipients:
        raise ApiError(
            400,
            "fx_recipients_invalid",
            f"{len(recipients)} recipients given; at most {max_recipients} are allowed",
        )
    return recipients


def _files_of(parts: list[Part], max_files: int) -> list[InputFile]:
    files = [p for p in parts if p.name == "files"]
    if not files:
        raise ApiError(400, "fx_file_invalid", "no files part: nothing to send")
    if len(files) > max_files:
        raise ApiError(
            400,
            "fx_max_files_reached",
            f"{len(files)} files given; at most {max_files} can be sent in one fax",
        )
    return [InputFile(filename=_basename(p.filename), data=p.data) for p in files]


def _basename(filename: str | None) -> str | None:
    # Clients send full paths ("/path/to/file/fax.txt", "C:\\fax.pdf"); keep the last part.
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1] or None


@router.post("/{user_id}/{extension}")
async def create_fax(request: Request, user_id: str, extension: str) -> Response:
    """Create Faxes: store the documents as fax pages and queue one delivery per recipient."""
    state = _state(request)
    settings = state.settings
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise ApiError(
            413, "request_too_large", f"the body is larger than {settings.max_upload_bytes} bytes"
        )
    # The body is read first so that one trip to the database serves the token, the
    # extension and the recipients; the errors keep their order all the same (401, 404,
    # 403 before a malformed body, recipients before files).
    parts: list[Part] = []
    body_error: ApiError | None = None
    try:
        parts = await read_parts(
            request.headers.get("content-type"),
            request.stream(),
            max_bytes=settings.max_upload_bytes,
            max_parts=settings.max_files + 16,
        )
    except (BodyTooLarge, BodyError) as e:
        body_error = api_error(e)
    given: list[str] | None = None
    if body_error is None:
        try:
            given = _recipients_of(parts, settings.max_recipients)
        except ApiError as e:
            body_error = e
    token = _token_of(request)

    def lookup() -> tuple[_Target, list[tuple[str, str]] | None]:
        with state.sessions() as session:
            principal = authenticate(session, token, state.clock())
            user, ext = resolve_extension(session, principal, user_id, extension)
            if not ext.fax_enabled:
                raise FaxNotEnabled(f"fax is not enabled on extension {ext.number}")
            if given is None:
                return _Target(principal, user, ext), None
            found = resolve_recipients(session, ext.organization_id, given)
        return _Target(principal, user, ext), [(r.given, r.destination) for r in found]

    target, classified = await run_in_threadpool(lookup)
    if body_error is not None or classified is None:
        assert body_error is not None
        raise body_error
    recipients = classified
    inputs = _files_of(parts, settings.max_files)

    resolution = Resolution(settings.resolution)
    document = await state.converter.convert(inputs, resolution=resolution)
    if document.pages == 0 or document.tiff is None:
        return Response(status_code=204)

    stored = [
        fax_store.StoredFile(
            filename=f.filename, kind=sniff(f.data, f.filename) or "unknown", size=len(f.data)
        )
        for f in inputs
    ]
    tiff = document.tiff

    def save() -> fax_store.NewFax:
        with state.sessions() as session:
            return fax_store.create_outgoing(
                session,
                state.files,
                extension_id=target.extension.id,
                user_id=target.user.id,
                recipients=recipients,
                documents=stored,
                tiff=tiff,
                pages=document.pages,
                resolution=resolution.value,
                now=state.clock(),
            )

    fax = await run_in_threadpool(save)
    state.queued()
    return JSONResponse({"id": fax.id, "uid": fax.uid})


@router.get("/{user_id}/{extension}")
async def list_faxes(
    request: Request,
    user_id: str,
    extension: str,
    start_index: Annotated[int, Query(alias="startIndex", ge=0)] = 0,
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
    path = state.files.path(fax.document)
    if not path.exists():
        raise ApiError(500, "internal_server_error", f"the document of fax {fax.id} is missing")
    if format == "tiff":
        return FileResponse(path, media_type="image/tiff", filename=f"fax-{fax.id}.tif")
    pdf = await run_in_threadpool(_tiff_to_pdf, path.read_bytes())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="fax-{fax.id}.pdf"'},
    )


def _tiff_to_pdf(tiff: bytes) -> bytes:
    with Image.open(io.BytesIO(tiff)) as im:
        pages = [frame.convert("1") for frame in ImageSequence.Iterator(im)]
        dpi = im.info.get("dpi", (204, 196))
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=float(dpi[1]))
    return out.getvalue()
