"""Resolve `{userId}/{extension}` and recipients against the directory, within a context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from faxline.auth.context import Principal
from faxline.auth.errors import ExtensionInvalid, Forbidden, NotFound
from faxline.directory.numbers import (
    NumberError,
    is_extension_form,
    is_phone_number,
    split_full,
)
from faxline.directory.numbers import parse_extension as parse_extension_number
from faxline.store.models import Extension, Organization, User

SELF_ALIASES = frozenset({"@me", "@viewer"})


@dataclass(frozen=True)
class UserInfo:
    id: int
    uid: str
    organization_id: int | None


@dataclass(frozen=True)
class ExtensionInfo:
    id: int
    number: str
    organization_id: int
    owner_id: int
    fax_enabled: bool
    caller_id: str | None
    header: str | None


# Plain column selects: this runs on every request, and ORM entities with their eager
# loads cost several times more than the rows.
_USER = select(User.id, User.uid, User.organization_id)
_EXTENSION = select(
    Extension.id,
    Extension.number,
    Extension.organization_id,
    Extension.owner_id,
    Extension.fax_enabled,
    Extension.caller_id,
    Extension.header,
)


# Each built once with bound parameters: a statement built anew per request spends more
# on its cache key than on running (this runs for every API request and web page).
_USER_BY = {
    "id": _USER.where(User.id == bindparam("value")),
    "uid": _USER.where(User.uid == bindparam("value")),
}
_EXTENSIONS = _EXTENSION.join(Organization, Extension.organization_id == Organization.id)
_EXTENSION_BY_CODE = _EXTENSIONS.where(
    Organization.code == bindparam("organization"), Extension.short == bindparam("short")
)
_EXTENSION_BY_ORGANIZATION_ID = _EXTENSIONS.where(
    Extension.organization_id == bindparam("organization"), Extension.short == bindparam("short")
)


def _user(session: Session, by: str, value: int | str) -> UserInfo | None:
    row = session.execute(_USER_BY[by], {"value": value}).first()
    return UserInfo(*row) if row is not None else None


def _extension(
    session: Session, query: Any, organization: int | str, short: str
) -> ExtensionInfo | None:
    row = session.execute(query, {"organization": organization, "short": short}).first()
    return ExtensionInfo(*row) if row is not None else None


def resolve_extension(
    session: Session, principal: Principal, user_ref: str, extension_text: str
) -> tuple[UserInfo, ExtensionInfo]:
    """The user named by `user_ref` and its extension, or an auth error.

    Raises ExtensionInvalid (malformed, `@self`), NotFound (missing or outside the
    caller's context) or Forbidden (inside the context, not allowed).
    """
    try:
        ref = parse_extension_number(extension_text)
    except NumberError as e:
        raise ExtensionInvalid(str(e)) from None

    user: UserInfo | None
    if user_ref in SELF_ALIASES:
        user = _user(session, "id", principal.user_id)
        if user is None:
            raise NotFound("the token's user no longer exists")
    elif user_ref == "@owner":
        user = None
    else:
        user = _user(session, "uid", user_ref)
        if user is None or not principal.sees(user.organization_id):
            raise NotFound(f"user {user_ref!r} not found")

    extension: ExtensionInfo | None
    if ref.organization is not None:
        extension = _extension(session, _EXTENSION_BY_CODE, ref.organization, ref.short)
    else:
        org_id = user.organization_id if user is not None else principal.organization_id
        extension = (
            None
            if org_id is None
            else _extension(session, _EXTENSION_BY_ORGANIZATION_ID, org_id, ref.short)
        )
    if extension is None or not principal.sees(extension.organization_id):
        raise NotFound(f"extension {extension_text!r} not found")

    if user is None:
        user = _user(session, "id", extension.owner_id)
        assert user is not None  # a foreign key
    if not principal.may_act_for(user.id, user.organization_id):
        raise Forbidden(f"this app may not act for user {user.uid!r}")
    if extension.owner_id != user.id:
        raise Forbidden(f"extension {extension.number} does not belong to user {user.uid!r}")
    return user, extension


class RecipientError(ValueError):
    """A recipient that is neither a phone number nor an extension number."""


@dataclass(frozen=True)
class Recipient:
    given: str  # as the client wrote it
    destination: str  # full extension number or phone number


def resolve_recipients(session: Session, organization_id: int, given: list[str]) -> list[Recipient]:
    """Classify each recipient; digits that name an extension of the sender's organization
    are that extension, other digits are phone numbers. Duplicates collapse into one.

    A full extension number of the sender's own organization must exist (RecipientError
    otherwise): the sender may know its own directory. One of another organization is
    accepted unseen, whether it exists or not, so that nothing of another organization can
    be probed; it fails later, when routed, as before. A short form that names no extension
    of the organization is a phone number (`999` may well be one), as it always was.
    """
    out: list[Recipient] = []
    seen: set[str] = set()
    own_code: str | None = None
    for text in given:
        stripped = text.strip()
        if is_extension_form(stripped):
            code, short = split_full(stripped)
            if own_code is None:
                own_code = session.scalar(
                    select(Organization.code).where(Organization.id == organization_id)
                )
            if code == own_code and (
                session.scalar(
                    select(Extension.id).where(
                        Extension.organization_id == organization_id, Extension.short == short
                    )
                )
                is None
            ):
                raise RecipientError(f"recipient {text!r} is not an extension of your organization")
            destination = stripped
        elif (
            stripped.isascii()
            and stripped.isdigit()
            and (
                number := session.scalar(
                    select(Extension.number).where(
                        Extension.organization_id == organization_id, Extension.short == stripped
                    )
                )
            )
        ):
            destination = number
        elif is_phone_number(stripped):
            destination = stripped
        else:
            raise RecipientError(
                f"recipient {text!r} is not a phone number (3-20 digits, optional +) "
                "or an extension number"
            )
        if destination not in seen:
            seen.add(destination)
            out.append(Recipient(given=stripped, destination=destination))
    return out
