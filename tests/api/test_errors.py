"""Errors of the layers below become UAPI answers in one table, by class."""

from __future__ import annotations

import pytest

from faxline.api.errors import api_error
from faxline.api.multipart import BodyError, BodyTooLarge
from faxline.auth import errors as auth
from faxline.directory.resolve import RecipientError
from faxline.documents.errors import DocumentError


class _GoneUser(auth.NotFound):
    """A subclass the table does not list answers as its nearest listed base."""


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (auth.InvalidToken("x"), 401, "invalid_token"),
        (auth.NotFound("x"), 404, "not_found"),
        (_GoneUser("x"), 404, "not_found"),
        (auth.Forbidden("x"), 403, "forbidden"),
        (auth.ExtensionInvalid("x"), 400, "extension_invalid"),
        (auth.FaxNotEnabled("x"), 403, "fx_extension_not_enabled"),
        (RecipientError("x"), 400, "fx_recipients_invalid"),
        (DocumentError("a.pdf", "encrypted"), 400, "fx_file_invalid"),
        (BodyTooLarge("x"), 413, "request_too_large"),
        (BodyError("x"), 400, "request_invalid"),
    ],
)
def test_mapped_errors(error: Exception, status: int, code: str) -> None:
    mapped = api_error(error)
    assert mapped is not None
    assert (mapped.status, mapped.code, mapped.message) == (status, code, str(error))


def test_other_errors_are_not_mapped() -> None:
    assert api_error(RuntimeError("boom")) is None
    assert api_error(auth.AuthError("a base without a UAPI code")) is None
