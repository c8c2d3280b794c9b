"""Shapes the OpenAPI description shows: the UAPI error body and Create Faxes' body and
answers. The handlers build their answers themselves; these describe them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["fx_file_invalid"])
    message: str = Field(examples=["Human readable message."])


class UapiError(BaseModel):
    """Every error: `{"error": {"code": ..., "message": ...}}`, with the HTTP status set."""

    error: ErrorDetail


class FaxCreated(BaseModel):
    id: int
    uid: str = Field(pattern="^[0-9a-f]{32}$")


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": UapiError, "description": description}
    if headers:
        answer["headers"] = headers
    return answer


CREATE_FAX_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FaxCreated, "description": "Stored, one delivery queued per recipient."},
    204: {"description": "The files hold no pages (only empty text); nothing is stored."},
    400: _error(
        "fx_recipients_invalid, fx_file_invalid, fx_max_files_reached, extension_invalid, "
        "request_invalid (malformed multipart, a request part that is not JSON, too deep "
        "or too large)"
    ),
    401: _error("invalid_token: missing, unknown or expired token (the body is not read)"),
    403: _error("forbidden, fx_extension_not_enabled (the body is not read)"),
    404: _error("not_found: no such user or extension in the app's context"),
    408: _error("request_timeout: the body did not arrive in time"),
    413: _error("request_too_large: the body is larger than FAXLINE_MAX_UPLOAD_BYTES"),
    429: _error(
        "too_many_requests",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
    500: _error("internal_server_error: a fault of ours, logged with the request id"),
}

CREATE_FAX_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files", "request"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": (
                                "The documents, in order: pdf, tiff, jpeg, png, gif, bmp, webp,"
                                " txt, html, docx, doc, odt, rtf, xlsx, xls, ods, pptx, odp"
                                " (types found from the content)."
                            ),
                        },
                        "request": {
                            "type": "object",
                            "required": ["recipients"],
                            "properties": {
                                "recipients": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "minItems": 1,
                                    "examples": [["7778888", "0003*211"]],
                                },
                                "cover": {
                                    "type": "object",
                                    "description": "A cover page before the documents.",
                                    "properties": {
                                        k: {"type": "string"}
                                        for k in ("subject", "notes", "to", "from")
                                    },
                                    "additionalProperties": False,
                                },
                                "resolution": {
                                    "type": "string",
                                    "enum": ["standard", "fine", "superfine"],
                                    "description": (
                                        "Lines per inch down the page: 98, 196, 391. Default:"
                                        " FAXLINE_RESOLUTION (fine). A far end that takes"
                                        " less gets the pages one step coarser."
                                    ),
                                },
                            },
                            "description": "JSON text; the part may lack a Content-Type.",
                        },
                    },
                },
                "encoding": {"request": {"contentType": "application/json, text/plain"}},
            }
        },
    }
}
