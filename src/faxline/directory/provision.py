"""`faxline provision`: apply a declarative JSON file of tenants and apps (idempotent).

The whole file is checked before anything is written, and then applied in one
transaction, so a bad file changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from faxline.auth.context import Role
from faxline.auth.secrets import hash_secret, verify_secret
from faxline.directory.numbers import NumberError, is_phone_number, split_full
from faxline.directory.simulator import SimulatedNumber, SimulatorConfig
from faxline.directory.trunks import TrunkConfig
from faxline.store.models import App, Extension, Organization, Route, User


class ProvisionError(ValueError):
    """The file is not valid; the message names the offending entry."""


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
        try:
            split_full(v)
        except NumberError as e:
            raise ValueError(f"{e} (write it as ORG*EXT, e.g. 0003*210)") from None
        return v

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


class ProvisionFile(_Entry):
    organizations: list[OrganizationSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(default_factory=list)
    extensions: list[ExtensionSpec] = Field(default_factory=list)
    apps: list[AppSpec] = Field(default_factory=list)
    routes: list[RouteSpec] = Field(default_factory=list)
    trunks: list[TrunkSpec] = Field(default_factory=list)


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


def apply(session: Session, spec: ProvisionFile) -> dict[str, int]:
    """Create or update everything in `spec`; the caller commits. Returns counts."""
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    users = {u.uid: u for u in session.scalars(select(User))}

    _check_references(spec, set(orgs), users)

    for o in spec.organizations:
        org = orgs.get(o.code)
        if org is None:
            org = orgs[o.code] = Organization(code=o.code, name=o.name)
            session.add(org)
        org.name = o.name
    session.flush()

    for u in spec.users:
        user = users.get(u.id)
        if user is None:
            user = users[u.id] = User(uid=u.id)
            session.add(user)
        user.role = u.role.value
        user.organization_id = orgs[u.organization].id if u.organization else None
    session.flush()

    for i, x in enumerate(spec.extensions):
        code, short = split_full(x.number)
        owner = users[x.owner]
        if owner.organization_id != orgs[code].id:
            raise ProvisionError(
                f"extensions[{i}] ({x.number!r}): owner {x.owner!r} is not in organization {code}"
            )
        ext = session.scalar(select(Extension).where(Extension.number == x.number))
        if ext is None:
            ext = Extension(number=x.number, short=short, organization_id=orgs[code].id)
            session.add(ext)
        ext.owner_id = owner.id
        ext.fax_enabled = x.fax
        ext.caller_id = x.caller_id
        ext.header = x.header
        ext.dids = list(x.dids)
    session.flush()

    for a in spec.apps:
        app = session.scalar(select(App).where(App.client_id == a.client_id))
        if app is None:
            app = App(client_id=a.client_id, secret_hash="")
            session.add(app)
        if a.client_secret_hash is not None:
            app.secret_hash = a.client_secret_hash
        elif a.client_secret is not None and not verify_secret(app.secret_hash, a.client_secret):
            app.secret_hash = hash_secret(a.client_secret)
        app.owner_id = users[a.owner].id
    session.flush()

    for r in spec.routes:
        route = session.scalar(select(Route).where(Route.name == r.name))
        if route is None:
            route = Route(name=r.name)
            session.add(route)
        route.kind = r.type
        route.max_calls = r.max_calls
        route.config = SimulatorConfig(numbers=r.numbers).model_dump(mode="json", by_alias=True)
    for t in spec.trunks:
        route = session.scalar(select(Route).where(Route.name == t.name))
        if route is None:
            route = Route(name=t.name)
            session.add(route)
        route.kind = "trunk"
        route.max_calls = t.max_calls
        route.config = t.config()
    session.flush()
    return {
        "organizations": len(spec.organizations),
        "users": len(spec.users),
        "extensions": len(spec.extensions),
        "apps": len(spec.apps),
        "routes": len(spec.routes),
        "trunks": len(spec.trunks),
    }


def _check_references(spec: ProvisionFile, org_codes: set[str], users: dict[str, User]) -> None:
    codes = org_codes | {o.code for o in spec.organizations}
    _unique("organizations", [o.code for o in spec.organizations])
    _unique("users", [u.id for u in spec.users])
    _unique("extensions", [x.number for x in spec.extensions])
    _unique("apps", [a.client_id for a in spec.apps])
    _unique("routes", [r.name for r in spec.routes] + [t.name for t in spec.trunks])
    user_orgs: dict[str, str | None] = {}
    for uid, user in users.items():
        user_orgs[uid] = user.organization.code if user.organization else None
    for i, u in enumerate(spec.users):
        if u.role is Role.ADMIN and u.organization is not None:
            raise ProvisionError(f"users[{i}] ({u.id!r}): an admin belongs to no organization")
        if u.role is not Role.ADMIN and u.organization is None:
            raise ProvisionError(
                f"users[{i}] ({u.id!r}): role {u.role.value} needs an organization"
            )
        if u.organization is not None and u.organization not in codes:
            raise ProvisionError(
                f"users[{i}] ({u.id!r}): organization {u.organization!r} does not exist"
            )
        user_orgs[u.id] = u.organization
    for i, x in enumerate(spec.extensions):
        code, _ = split_full(x.number)
        if code not in codes:
            raise ProvisionError(
                f"extensions[{i}] ({x.number!r}): organization {code!r} does not exist"
            )
        if x.owner not in user_orgs:
            raise ProvisionError(
                f"extensions[{i}] ({x.number!r}): owner {x.owner!r} does not exist"
            )
        if user_orgs[x.owner] != code:
            raise ProvisionError(
                f"extensions[{i}] ({x.number!r}): owner {x.owner!r} is not in organization {code}"
            )
    for i, a in enumerate(spec.apps):
        if a.owner not in user_orgs:
            raise ProvisionError(f"apps[{i}] ({a.client_id!r}): owner {a.owner!r} does not exist")


def _unique(section: str, keys: list[str]) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise ProvisionError(f"{section}[{i}] ({key!r}): listed twice")
        seen.add(key)
