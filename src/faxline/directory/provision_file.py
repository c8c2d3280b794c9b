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


class UserSpec(_Entry):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    organization: str | None = None
    role: Role = Role.USER


class ExtensionSpec(_Entry):
    number: str
    owner: str
    fax: bool = False
    caller_id: str | None = Field(None, alias="callerId", max_length=20)
    header: str | None = Field(None, max_length=50)
    dids: list[str] = Field(default_factory=list)

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


class AppSpec(_Entry):
    client_id: str = Field(alias="clientId", pattern=r"^[A-Za-z0-9_.@-]{1,128}$")
    client_secret: str | None = Field(None, alias="clientSecret", min_length=8, max_length=256)
    # An argon2 hash instead of the secret, so that the file need not hold it in clear.
    client_secret_hash: str | None = Field(
        None, alias="clientSecretHash", pattern=r"^\$argon2(id|i|d)\$", max_length=255
    )
    owner: str

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
    return parse(raw)


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
