"""`/uapi/webhooks/@me/deliveries`: an app's own webhook delivery log (every attempt)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from faxline.api.errors import ApiError
from faxline.api.state import AppState
from faxline.auth.tokens import authenticate, bearer_value
from faxline.store import outbox

router = APIRouter(prefix="/uapi/webhooks")


@router.get("/{user_id}/deliveries")
async def list_deliveries(
    request: Request,
    user_id: str,
    start_index: Annotated[int, Query(alias="startIndex", ge=0)] = 0,
    count: Annotated[int, Query(ge=1, le=4999)] = 100,
) -> JSONResponse:
    """The calling app's webhook attempts, newest first, in UAPI's list shape."""
    state: AppState = request.app.state.faxline
    token = bearer_value(request.headers.get("authorization")) or bearer_value(
        request.query_params.get("accessRequestToken")
    )

    def work() -> dict[str, Any]:
        with state.sessions() as session:
            principal = authenticate(session, token, state.clock())
            if user_id != "@me":
                # The log is the app's own: no app reads another's.
                raise ApiError(404, "not_found", "Only @me has a webhook delivery log.")
            total, rows = outbox.attempts_of_app(
                session, principal.app_id, start=start_index, count=count
            )
            entries = [outbox.attempt_view(a) for a in rows]
        return {
            "paging": {
                "startIndex": start_index,
                "itemsPerPage": len(entries),
                "totalResults": total,
            },
            "entry": entries,
        }

    return JSONResponse(await run_in_threadpool(work))
