"""The web fax center's pages: sign-in, lists, one fax, sending. Every rule (who may see
which extension, what a fax needs) is the API's code, called the same way."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from faxline.api.errors import ApiError, api_error
from faxline.api.faxes import (
    check_cover,
    check_file_count,
    check_recipient_count,
    document_response,
    input_files,
    send_fax,
)
from faxline.api.state import AppState
from faxline.api.views import fax_view
from faxline.auth.context import Principal, Role
from faxline.auth.errors import AuthError, FaxNotEnabled, Forbidden, NotFound
from faxline.auth.web_sessions import SignedIn, csrf_matches, sign_in, sign_out, signed_in
from faxline.delivery.submit import CoverSender, cover_text, organization_of
from faxline.directory.resolve import RecipientError, resolve_extension, resolve_recipients
from faxline.documents import InputFile, Resolution
from faxline.documents.convert import CoverText
from faxline.documents.errors import DocumentError
from faxline.store import faxes as fax_store
from faxline.store import outbox
from faxline.store.blobs import BlobStore
from faxline.store.models import Extension, Fax
from faxline.web import words
from faxline.web.signin import (
    COOKIE,
    address_of,
    current,
    secure_cookies,
    state_of,
    throttle_of,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    delivery_words=words.delivery_words,
    fax_words=words.fax_words,
    shown_time=words.shown_time,
    reason_words=words.reason_words,
)
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
PAGE_WIDTH = 860  # pixels across of a page image; thumbnails are scaled by the browser
# Zoom levels of the fax page: name, the image width asked for, the label. "fit" scales the
# 860-pixel image to the width there is; 200 % asks for an image rendered twice as wide
# (a fine fax page is 1728 pixels across: still sharp), not the small one blown up.
ZOOMS = {"fit": (PAGE_WIDTH, "Fit width"), "100": (PAGE_WIDTH, "100 %"), "200": (1720, "200 %")}
IMAGE_WIDTHS = frozenset(width for width, _ in ZOOMS.values())
# A page image never changes: the browser may keep it a year without asking again; private,
# since it is one signed-in person's fax.
PREVIEW_PAGES = 12
PAGE_IMAGE_CACHE = "private, max-age=31536000, immutable"
_SEARCH = re.compile(r"^[0-9+*]{1,32}$")
_WRONG = "The user name or password is wrong."
_THROTTLED = "Too many failed attempts. Wait a few minutes and try again."


def _page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _not_found(request: Request, who: SignedIn | None) -> HTMLResponse:
    return _page(request, "not_found.html", {"who": who}, status_code=404)


def _bad_csrf(request: Request, who: SignedIn | None) -> HTMLResponse:
    return _page(request, "csrf.html", {"who": who}, status_code=403)


async def _form_csrf_ok(request: Request, who: SignedIn, form: Any) -> bool:
    given = form.get("csrf_token")
    return csrf_matches(who.csrf_token, given if isinstance(given, str) else None)


T = TypeVar("T")


async def _signed_in_work(
    request: Request, work: Callable[[Session, SignedIn], T]
) -> tuple[SignedIn | None, T | None]:
    """The person of this request's cookie and `work` done for them, in one trip to a
    worker thread and one database session (the hot pages are this and nothing else)."""
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        return None, None

    def run() -> tuple[SignedIn | None, T | None]:
        with state.sessions() as session:
            who = signed_in(session, token, state.clock())
            return (who, work(session, who)) if who is not None else (None, None)

    return await run_in_threadpool(run)


@router.get("/")
async def home(request: Request) -> Response:
    who = await current(request)
    return RedirectResponse("/faxes" if who else "/login", status_code=303)


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await current(request):
        return RedirectResponse("/faxes", status_code=303)
    return _page(request, "login.html", {"who": None, "error": None, "username": ""})


@router.post("/login")
async def login(request: Request) -> Response:
    state = state_of(request)
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    throttle = throttle_of(request)
    address = address_of(request)
    if throttle.blocked(username, address):
        context = {"who": None, "error": _THROTTLED, "username": username}
        return _page(request, "login.html", context, status_code=429)

    def work() -> Any:
        with state.sessions() as session:
            return sign_in(session, username, password, state.clock())

    new = await run_in_threadpool(work)
    if new is None:
        throttle.failed(username, address)
        context = {"who": None, "error": _WRONG, "username": username}
        return _page(request, "login.html", context, status_code=401)
    throttle.succeeded(username)
    response = RedirectResponse("/faxes", status_code=303)
    response.set_cookie(
        COOKIE,
        new.token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()
    form = await request.form()
    if not await _form_csrf_ok(request, who, form):
        return _bad_csrf(request, who)
    token = request.cookies.get(COOKIE)

    def work() -> None:
        with state.sessions() as session:
            sign_out(session, token)

    await run_in_threadpool(work)
    response = _to_login()
    response.delete_cookie(COOKIE, path="/")
    return response


# Built once, with bound parameters: these run on every page (see web_sessions._SESSION).
_FAX_EXTENSIONS = select(Extension.number).where(Extension.fax_enabled.is_(True))
_EXTENSIONS_BY_ROLE = {
    Role.USER: _FAX_EXTENSIONS.where(Extension.owner_id == bindparam("user_id")),
    Role.ORGANIZATION: _FAX_EXTENSIONS.where(
        Extension.organization_id == bindparam("organization_id")
    ),
}
_ALL_FAX_EXTENSIONS = _FAX_EXTENSIONS.order_by(Extension.number)
_EXTENSIONS_BY_ROLE = {r: q.order_by(Extension.number) for r, q in _EXTENSIONS_BY_ROLE.items()}
_FAX_BY_UID = (
    select(Fax.id, Extension.number, Fax.document, Fax.pages)
    .join(Extension, Fax.extension_id == Extension.id)
    .where(Fax.uid == bindparam("uid"))
)


def _extensions_of(session: Session, principal: Principal) -> list[str]:
    """The fax extensions this person may act on: own, organization's, or all."""
    query = _EXTENSIONS_BY_ROLE.get(principal.role, _ALL_FAX_EXTENSIONS)
    params = {"user_id": principal.user_id, "organization_id": principal.organization_id}
    return list(session.scalars(query, params))


@dataclass(frozen=True)
class _Reachable:
    fax_id: int
    extension_id: int
    document: str
    pages: int


def _reachable(session: Session, principal: Principal, uid: str) -> _Reachable:
    """The fax with this uid if the person may reach its extension, by the API's rule;
    NotFound for anything else (elsewhere and nonexistent alike)."""
    if not re.fullmatch(r"[0-9a-f]{32}", uid):
        raise NotFound("no such fax")
    row = session.execute(_FAX_BY_UID, {"uid": uid}).first()
    if row is None:
        raise NotFound("no such fax")
    fax_id, number, document, pages = row
    try:
        _, ext = resolve_extension(session, principal, "@owner", number)
    except Forbidden:
        raise NotFound("no such fax") from None
    return _Reachable(fax_id, ext.id, document, pages)


def _fax_by_uid(session: Session, principal: Principal, uid: str) -> Fax:
    """The reachable fax with its deliveries, attempts and documents loaded."""
    found = _reachable(session, principal, uid)
    fax = fax_store.get_for_extension(session, found.extension_id, found.fax_id)
    if fax is None:
        raise NotFound("no such fax")
    return fax


@router.get("/faxes")
async def fax_list(request: Request) -> Response:
    query = request.query_params
    box = "in" if query.get("box") == "in" else "out"
    wanted = query.get("extension")
    search = (query.get("q") or "").strip()
    search_error = None
    if search and not _SEARCH.fullmatch(search):
        search_error = "Search by number: digits, + and * only."
        search = ""
    page = int(query["page"]) if query.get("page", "").isdigit() else 1
    page = max(1, page)

    def work(session: Session, who: SignedIn) -> dict[str, Any]:
        numbers = _extensions_of(session, who.principal)
        if not numbers:
            return {"extensions": [], "extension": None, "faxes": [], "total": 0}
        number = wanted if wanted in numbers else numbers[0]
        try:
            _, ext = resolve_extension(session, who.principal, "@owner", number)
        except AuthError:
            return {}
        total, faxes = fax_store.summaries_for_extension(
            session,
            ext.id,
            direction=box,
            start=(page - 1) * PAGE_SIZE,
            count=PAGE_SIZE,
            number=search or None,
        )
        return {"extensions": numbers, "extension": number, "faxes": faxes, "total": total}

    who, found = await _signed_in_work(request, work)
    if who is None:
        return _to_login()
    if not found:
        return _not_found(request, who)
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return _page(
        request,
        "list.html",
        {
            "who": who,
            "box": box,
            "q": search,
            "search_error": search_error,
            "page": page,
            "pages": pages,
            **found,
        },
    )


@router.get("/faxes/{uid}")
async def fax_page(request: Request, uid: str) -> Response:
    state = state_of(request)

    def work(session: Session, who: SignedIn) -> dict[str, Any] | None:
        try:
            fax = _fax_by_uid(session, who.principal, uid)
        except NotFound:
            return None
        fax_store.mark_read(session, fax, state.clock())
        unfinished = any(fax_store.is_unfinished(d.status) for d in fax.deliveries)
        failed = any(d.status == "failed" for d in fax.deliveries)
        return {"fax": fax_view(fax), "unfinished": unfinished, "failed": failed}

    who, found = await _signed_in_work(request, work)
    if who is None:
        return _to_login()
    if found is None:
        return _not_found(request, who)
    zoom = request.query_params.get("zoom", "fit")
    zoom = zoom if zoom in ZOOMS else "fit"
    context = {"who": who, "uid": uid, "zoom": zoom, "zooms": ZOOMS, **found}
    return _page(request, "fax.html", context)


async def _fax_or_none(request: Request, who: SignedIn, uid: str) -> Fax | None:
    state = state_of(request)

    def work() -> Fax | None:
        with state.sessions() as session:
            try:
                return _fax_by_uid(session, who.principal, uid)
            except NotFound:
                return None

    return await run_in_threadpool(work)


@router.get("/faxes/{uid}/document.{fmt}")
async def fax_document(request: Request, uid: str, fmt: str) -> Response:
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()
    fax = await _fax_or_none(request, who, uid)
    if fax is None or fmt not in ("pdf", "tif"):
        return _not_found(request, who)
    return await document_response(
        state.files, fax.document, fax.id, "tiff" if fmt == "tif" else "pdf"
    )


@router.get("/faxes/{uid}/pages/{number}.png")
async def fax_page_image(request: Request, uid: str, number: int) -> Response:
    """A page of the fax as PNG, rendered once per node and cached on disk. The image of a
    stored fax's page never changes, so it carries a strong ETag and may be kept by the
    browser for good (`immutable`); a revalidation is answered 304 without reading it."""
    state = state_of(request)
    cache_root = state.settings.data_dir / "page-images"
    wanted = request.headers.get("if-none-match")
    asked = request.query_params.get("width", str(PAGE_WIDTH))
    width = int(asked) if asked.isdigit() and int(asked) in IMAGE_WIDTHS else 0

    def work(session: Session, who: SignedIn) -> tuple[str, int, bytes | None] | None:
        try:
            fax = _reachable(session, who.principal, uid)
        except NotFound:
            return None
        if not 1 <= number <= fax.pages or not width:
            return None
        if _etag_matches(wanted, _page_etag(fax.document, number, width)):
            return fax.document, fax.pages, b""
        # In the same trip to the worker thread: a cached image costs no second one.
        image = cache_root / fax.document / f"{number}-{width}.png"
        try:
            return fax.document, fax.pages, image.read_bytes()
        except FileNotFoundError:
            return fax.document, fax.pages, None

    who, found = await _signed_in_work(request, work)
    if who is None:
        return _to_login()
    if found is None:
        return _not_found(request, who)
    document, _, png = found
    headers = {"ETag": _page_etag(document, number, width), "Cache-Control": PAGE_IMAGE_CACHE}
    if png == b"":
        return Response(status_code=304, headers=headers)
    if png is None:
        # The fax document never changes once stored, so its pages are cached under its name.
        cache = cache_root / document
        path = await run_in_threadpool(_renderable, state.files, document, cache)
        png = await state.converter.page_image(str(path), number - 1, width)
        await run_in_threadpool(_write_atomically, cache / f"{number}-{width}.png", png)
    return Response(png, media_type="image/png", headers=headers)


def _page_etag(document: str, number: int, width: int) -> str:
    return f'"{document}-{number}-{width}"'


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match holds this ETag (weak comparison, as RFC 9110 asks for it), or `*`."""
    if not header:
        return False
    given = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in given or etag in given


def _renderable(blobs: BlobStore, name: str, cache: Path) -> Path:
    """A local file of the document for the page renderer: the blob's own file, or a copy
    kept in this node's page cache beside the pages (so a fax read page by page is fetched
    from the database once per node, not once per page)."""
    own = blobs.file_path(name)
    if own is not None:
        return own
    cached = cache / "document.tif"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        copy = blobs.local_copy(name)
        try:
            copy.replace(cached)
        finally:
            blobs.release_copy(copy)
    return cached


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(f".{id(data)}.tmp")
    staged.write_bytes(data)
    staged.replace(path)


@router.post("/faxes/{uid}/{action}")
async def fax_action(request: Request, uid: str, action: str) -> Response:
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()
    form = await request.form()
    if not await _form_csrf_ok(request, who, form):
        return _bad_csrf(request, who)
    if action not in ("cancel", "send-again", "delete"):
        return _not_found(request, who)

    def work() -> str | None:
        with state.sessions() as session:
            try:
                fax = _fax_by_uid(session, who.principal, uid)
            except NotFound:
                return None
            if action == "cancel":
                fax_store.cancel(session, fax, state.clock())
            elif action == "send-again":
                fax_store.send_again(session, fax, state.clock())
            elif fax.direction == "in":
                fax_store.delete_incoming(session, state.files, fax)
                return "/faxes?box=in"
            else:
                fax_store.cancel(session, fax, state.clock())
                fax_store.delete_outgoing(session, state.files, fax)
                return "/faxes?box=out"
            return f"/faxes/{uid}"

    target = await run_in_threadpool(work)
    if target is None:
        return _not_found(request, who)
    if action == "send-again":
        state.queued()
    return RedirectResponse(target, status_code=303)


@router.get("/faxes/{uid}/events")
async def fax_events(request: Request, uid: str) -> Response:
    """Server-Sent Events: the fax as the API shows it, whenever it changes (the database
    is polled; it is the one source of truth for every node)."""
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()
    if await _fax_or_none(request, who, uid) is None:
        return _not_found(request, who)

    def snapshot() -> dict[str, Any] | None:
        with state.sessions() as session:
            try:
                return _fax_json(_fax_by_uid(session, who.principal, uid))
            except NotFound:
                return None

    async def stream() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            view = await run_in_threadpool(snapshot)
            if view is None:
                return
            text = json.dumps(view, sort_keys=True)
            if text != last:
                last = text
                yield f"event: fax\ndata: {text}\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def _fax_json(fax: Fax) -> dict[str, Any]:
    view = fax_view(fax)
    view["statusText"] = words.fax_words(view["status"])
    for d in view.get("deliveries", []):
        d["statusText"] = words.delivery_words(d["status"])
        d["reasonText"] = words.reason_words(d.get("failureReason"))
    return view


@router.get("/inbox/events")
async def inbox_events(request: Request) -> Response:
    """Server-Sent Events: the newest received fax of an extension, when it changes."""
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()
    number = request.query_params.get("extension", "")

    def newest() -> str | None:
        with state.sessions() as session:
            try:
                _, ext = resolve_extension(session, who.principal, "@owner", number)
            except AuthError:
                return None
            _, rows = fax_store.summaries_for_extension(
                session, ext.id, direction="in", start=0, count=1
            )
            return rows[0].uid if rows else ""

    if await run_in_threadpool(newest) is None:
        return _not_found(request, who)

    async def stream() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            uid = await run_in_threadpool(newest)
            if uid is None:
                return
            if uid != last:
                last = uid
                yield f"event: newest\ndata: {json.dumps(uid)}\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


WEBHOOK_PAGE_SIZE = 50


@router.get("/webhooks")
async def webhook_log(request: Request) -> Response:
    """The webhook delivery attempts of the organization's apps, for its admins (the
    global admin: of every app); the same 404 as a missing page for everyone else."""
    query = request.query_params
    page = max(1, int(query["page"])) if query.get("page", "").isdigit() else 1

    def work(session: Session, who: SignedIn) -> dict[str, Any] | None:
        principal = who.principal
        if principal.role is Role.USER:
            return None
        organization = principal.organization_id if principal.role is Role.ORGANIZATION else None
        total, rows = outbox.attempts_of_organization(
            session,
            organization,
            start=(page - 1) * WEBHOOK_PAGE_SIZE,
            count=WEBHOOK_PAGE_SIZE,
        )
        attempts = [
            {
                "view": outbox.attempt_view(a),
                "app": a.message.endpoint.app.client_id if a.message.endpoint else None,
                "started": a.started_at,
            }
            for a in rows
        ]
        return {"attempts": attempts, "total": total}

    who, found = await _signed_in_work(request, work)
    if who is None:
        return _to_login()
    if found is None:
        return _not_found(request, who)
    pages = max(1, -(-found["total"] // WEBHOOK_PAGE_SIZE))
    context = {"who": who, "page": page, "pages": pages, **found}
    return _page(request, "webhooks.html", context)


def split_recipients(text: str) -> list[str]:
    """Numbers separated by commas, spaces or new lines."""
    return [r for r in re.split(r"[\s,;]+", text) if r]


@router.get("/send")
async def send_form(request: Request) -> Response:
    state = state_of(request)
    who = await current(request)
    if who is None:
        return _to_login()

    def work() -> list[str]:
        with state.sessions() as session:
            return _extensions_of(session, who.principal)

    numbers = await run_in_threadpool(work)
    return _page(
        request,
        "send.html",
        {
            "who": who,
            "extensions": numbers,
            "errors": {},
            "recipients": "",
            "extension": None,
            "cover": {},
        },
    )


async def _uploads(form: Any) -> list[InputFile]:
    named: list[tuple[str | None, bytes]] = []
    for item in form.getlist("files"):
        if isinstance(item, UploadFile):
            data = await item.read()
            if item.filename or data:  # a browser sends one empty part for no file
                named.append((item.filename, data))
    return input_files(named)


@router.post("/send")
async def send(request: Request) -> Response:
    state = state_of(request)
    settings = state.settings
    who = await current(request)
    if who is None:
        return _to_login()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes:
        return _page(
            request, "error.html", {"who": who, "message": "The files are too large."}, 413
        )
    form = await request.form(max_files=settings.max_files + 1, max_fields=16)
    if not await _form_csrf_ok(request, who, form):
        return _bad_csrf(request, who)
    text = str(form.get("recipients") or "")
    number = str(form.get("extension") or "")
    given = split_recipients(text)
    inputs = await _uploads(form)
    errors: dict[str, str] = {}
    cover_fields = _cover_fields(form)
    cover = _checked_cover(cover_fields, errors)

    def lookup() -> tuple[list[str], Any]:
        with state.sessions() as session:
            numbers = _extensions_of(session, who.principal)
            try:
                user, ext = resolve_extension(session, who.principal, "@owner", number)
                if not ext.fax_enabled:
                    raise FaxNotEnabled(f"fax is not enabled on extension {ext.number}")
            except AuthError as e:
                errors["extension"] = _message(e)
                return numbers, None
            try:
                check_recipient_count(given, settings.max_recipients)
                found = resolve_recipients(session, ext.organization_id, given)
            except (ApiError, RecipientError) as e:
                errors["recipients"] = _message(e)
                found = []
            text_of_cover = None
            if cover is not None:
                organization = organization_of(session, ext.organization_id)
                text_of_cover = cover_text(
                    cover, organization, CoverSender.of(user, ext), given, state.clock()
                )
            recipients = [(r.given, r.destination) for r in found]
            return numbers, (user.id, ext.id, recipients, text_of_cover)

    numbers, target = await run_in_threadpool(lookup)
    try:
        check_file_count(len(inputs), settings.max_files)
    except ApiError as e:
        errors["files"] = e.message
    fax = None
    if not errors and target is not None:
        user_id, extension_id, recipients, text_of_cover = target
        try:
            fax = await send_fax(
                state, user_id, extension_id, recipients, inputs, cover=text_of_cover
            )
        except DocumentError as e:
            errors["files"] = _message(e)
        if fax is None and not errors:
            errors["files"] = "The files hold no pages: nothing to send."
    if fax is None:
        context = {
            "who": who,
            "extensions": numbers,
            "errors": errors,
            "recipients": text,
            "extension": number,
            "cover": cover_fields,
        }
        return _page(request, "send.html", context, status_code=400)
    return RedirectResponse(f"/faxes/{fax.uid}", status_code=303)


# The send form's cover fields: form field name, Create Faxes' `cover` key.
COVER_FIELDS = {
    "cover_to": "to",
    "cover_from": "from",
    "cover_subject": "subject",
    "cover_notes": "notes",
}


def _cover_fields(form: Any) -> dict[str, str]:
    """The cover fields as typed (for showing the form again), by `cover` key."""
    fields = {}
    for name, key in COVER_FIELDS.items():
        value = form.get(name)
        fields[key] = value if isinstance(value, str) else ""
    return fields


def _checked_cover(fields: dict[str, str], errors: dict[str, str]) -> dict[str, str] | None:
    """The cover Create Faxes would take from these fields, checked by its code, field by
    field so that a message lands next to its field; None when every field is empty (no
    cover page, as a request without `cover`)."""
    cover = {k: v.strip() for k, v in fields.items() if v.strip()}
    if not cover:
        return None
    for key, value in cover.items():
        try:
            check_cover({key: value})
        except ApiError as e:
            errors[f"cover_{key}"] = e.message
    return cover


def _message(e: Exception) -> str:
    mapped = api_error(e)
    return mapped.message if mapped is not None else str(e)


@router.post("/send/preview")
async def preview(request: Request) -> Response:
    """The pages exactly as they will be transmitted: the upload converted in the pool,
    its pages as PNG data for thumbnails. Nothing is stored."""
    state = state_of(request)
    settings = state.settings
    who = await current(request)
    if who is None:
        return _json_error(401, "invalid_session", "Sign in first.")
    form = await request.form(max_files=settings.max_files + 1, max_fields=16)
    if not await _form_csrf_ok(request, who, form):
        return _json_error(403, "csrf_invalid", "The form is out of date; reload the page.")
    inputs = await _uploads(form)
    cover_errors: dict[str, str] = {}
    cover = _checked_cover(_cover_fields(form), cover_errors)
    if cover_errors:
        field, message = next(iter(cover_errors.items()))
        return _json_error(400, "request_invalid", message, field=field)
    text_of_cover = None
    if cover is not None:
        number = str(form.get("extension") or "")
        given = split_recipients(str(form.get("recipients") or ""))

        def sender() -> CoverText | None:
            with state.sessions() as session:
                try:
                    user, ext = resolve_extension(session, who.principal, "@owner", number)
                except AuthError:
                    return None
                organization = organization_of(session, ext.organization_id)
                return cover_text(
                    cover, organization, CoverSender.of(user, ext), given, state.clock()
                )

        # A sender that is not (yet) valid previews without the cover; sending says why.
        text_of_cover = await run_in_threadpool(sender)
    try:
        check_file_count(len(inputs), settings.max_files)
        document = await state.converter.convert(
            inputs, resolution=_resolution(state), cover=text_of_cover
        )
    except (ApiError, DocumentError) as e:
        mapped = api_error(e)
        assert mapped is not None
        return _json_error(mapped.status, mapped.code, mapped.message)
    if document.tiff is None or document.pages == 0:
        return Response(
            json.dumps({"pages": 0, "cover": False, "images": []}), media_type="application/json"
        )
    staged = state.files.spool_path()
    try:
        await run_in_threadpool(staged.write_bytes, document.tiff)
        # Thumbnails of the first pages only (a 200-page upload is not 200 images); the count
        # and a note say how many more there are.
        shown = min(document.pages, PREVIEW_PAGES)
        images = [await state.converter.page_image(str(staged), i, 240) for i in range(shown)]
    finally:
        state.files.discard(staged)
    body = {
        "pages": document.pages,
        "cover": text_of_cover is not None,
        "images": ["data:image/png;base64," + base64.b64encode(i).decode() for i in images],
    }
    return Response(json.dumps(body), media_type="application/json")


def _resolution(state: AppState) -> Resolution:
    return Resolution(state.settings.resolution)


def _json_error(status: int, code: str, message: str, field: str = "files") -> Response:
    body = json.dumps({"error": {"code": code, "message": message, "field": field}})
    return Response(body, status_code=status, media_type="application/json")
