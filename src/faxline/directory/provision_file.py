"""The shape of a provisioning file (`faxline provision`), read and checked entry by entry.

The rules between entries (and between the file and what is stored) are checked when the
file is applied: see `faxline.directory.provision` and `faxline.directory.tenancy`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from faxline.auth.context import Role
from faxline.directory.numbers import NumberError, is_phone_number, split_full
from faxline.directory.simulator import SimulatedNumber, SimulatorConfig
from faxline.directory.trunks import TrunkConfig
from faxline.notify.signing import secret_key
from faxline.store.outbox import EVENT_TYPES

# An address as mail servers take it: no spaces, one @, a dotted domain.
EMAIL = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"


class ProvisionError(ValueError):
    """The file is not valid; the message names the offending entry."""


def _full_number(v: str) -> str:
    try:
        split_full(v)
    except NumberError as e:
        raise ValueError(f"{e} (write it as ORG*EXT, e.g. 0003*210)") from None
    return v


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class OrganizationSpec(_Entry):
    code: str = Field(pattern=r"^\d{1,10}$")
    name: str = Field(min_length=1, max_length=200)
    # A text file with {field} placeholders (documents.cover); relative to the file.
    cover_template: str | None = Field(None, alias="coverTemplate", min_length=1)


class UserSpec(_Entry):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    organization: str | None = None
    role: Role = Role.USER
    # The web (and SMTP AUTH) password: in clear for demos, or as an argon2 hash.
    password: str | None = Field(None, min_length=8, max_length=256)
    password_hash: str | None = Field(
        None, alias="passwordHash", pattern=r"^\$argon2(id|i|d)\$", max_length=255
    )
    email: str | None = Field(None, pattern=EMAIL, max_length=254)
    fax_extension: str | None = Field(None, alias="faxExtension")

    @field_validator("fax_extension")
    @classmethod
    def _fax_extension(cls, v: str | None) -> str | None:
        return None if v is None else _full_number(v)

    @model_validator(mode="after")
    def _one_password(self) -> UserSpec:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give at most one of password and passwordHash")
        return self


class ExtensionSpec(_Entry):
    number: str
    owner: str
    fax: bool = False
    caller_id: str | None = Field(None, alias="callerId", max_length=20)
    header: str | None = Field(None, max_length=50)
    dids: list[str] = Field(default_factory=list)
    email: list[Annotated[str, Field(pattern=EMAIL, max_length=254)]] = Field(default_factory=list)

    @field_validator("number")
    @classmethod
    def _full_number(cls, v: str) -> str:
        return _full_number(v)

    @field_validator("dids")
    @classmethod
    def _phone_numbers(cls, v: list[str]) -> list[str]:
        for did in v:
            if not is_phone_number(did):
                raise ValueError(f"DID {did!r} is not a phone number")
        return v


class WebhookSpec(_Entry):
    """`apps[].webhooks[]`: where the app's events go, signed with `secret`."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    secret: str = Field(max_length=255)
    events: list[Literal[EVENT_TYPES]] | None = None  # type: ignore[valid-type]

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        secret_key(v)
        return v


class AppSpec(_Entry):
    client_id: str = Field(alias="clientId", pattern=r"^[A-Za-z0-9_.@-]{1,128}$")
    client_secret: str | None = Field(None, alias="clientSecret", min_length=8, max_length=256)
    # An argon2 hash instead of the secret, so that the file need not hold it in clear.
    client_secret_hash: str | None = Field(
        None, alias="clientSecretHash", pattern=r"^\$argon2(id|i|d)\$", max_length=255
    )
    owner: str
    webhooks: list[WebhookSpec] = Field(default_factory=list)

    @field_validator("webhooks")
    @classmethod
    def _distinct_urls(cls, v: list[WebhookSpec]) -> list[WebhookSpec]:
        urls = [w.url for w in v]
        if len(set(urls)) != len(urls):
            raise ValueError("each webhook url appears once per app")
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> AppSpec:
        if (self.client_secret is None) == (self.client_secret_hash is None):
            raise ValueError("give exactly one of clientSecret and clientSecretHash")
        return self


class RouteSpec(_Entry):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    type: Literal["simulator"]
    max_calls: int = Field(4, alias="maxCalls", ge=1, le=1000)
    numbers: dict[str, SimulatedNumber] = Field(default_factory=dict)

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, v: dict[str, SimulatedNumber]) -> dict[str, SimulatedNumber]:
        SimulatorConfig(numbers=v)
        return v


class TrunkSpec(TrunkConfig):
    """A trunk entry of the file: a TrunkConfig with a name and a call limit."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    max_calls: int = Field(10, alias="maxCalls", ge=1, le=1000)

    def config(self) -> dict[str, Any]:
        return TrunkConfig.model_validate(
            self.model_dump(exclude={"name", "max_calls"}, by_alias=True)
        ).model_dump(mode="json", by_alias=True)


_ORG_CODE = Field(pattern=r"^\d{1,10}$")
_NAME = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class RemoveSpec(_Entry):
    """What the file removes, by key. Removing what does not exist is no error (the file
    stays idempotent); what still depends on a removed entry must be removed with it."""

    organizations: list[Annotated[str, _ORG_CODE]] = Field(default_factory=list)
    users: list[Annotated[str, _NAME]] = Field(default_factory=list)
    extensions: list[str] = Field(default_factory=list)
    apps: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,128}$")]] = Field(
        default_factory=list
    )
    # Extensions (also listed in `extensions`) whose faxes are deleted with them.
    faxes_of: list[str] = Field(default_factory=list, alias="faxesOf")
    routes: list[Annotated[str, _NAME]] = Field(default_factory=list)

    @field_validator("extensions", "faxes_of")
    @classmethod
    def _full_numbers(cls, v: list[str]) -> list[str]:
        for number in v:
            _full_number(number)
        return v


class ProvisionFile(_Entry):
    organizations: list[OrganizationSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(default_factory=list)
    extensions: list[ExtensionSpec] = Field(default_factory=list)
    apps: list[AppSpec] = Field(default_factory=list)
    routes: list[RouteSpec] = Field(default_factory=list)
    trunks: list[TrunkSpec] = Field(default_factory=list)
    remove: RemoveSpec = Field(default_factory=RemoveSpec)


def load(path: Path) -> ProvisionFile:
    """Read and check a provisioning file's shape."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ProvisionError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise ProvisionError(f"{path}: not JSON: {e}") from None
    spec = parse(raw)
    # Template paths are relative to the file that names them, wherever faxline runs.
    organizations = [
        o.model_copy(update={"cover_template": str(path.parent / o.cover_template)})
        if o.cover_template is not None
        else o
        for o in spec.organizations
    ]
    return spec.model_copy(update={"organizations": organizations})


def parse(raw: Any) -> ProvisionFile:
    try:
        return ProvisionFile.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = _where(raw, err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise ProvisionError("; ".join(problems)) from None


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`users[1] (id 'olga').role` for an error location."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict):
                label = next(
                    (node[k] for k in ("id", "code", "number", "clientId", "name") if k in node),
                    None,
                )
                if label is not None:
                    parts.append(f" ({label!r})")
        else:
            parts.append(f".{key}" if parts else str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "file"
