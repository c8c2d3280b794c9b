"""The tenancy rules, checked on a whole directory: what provisioning would leave behind.

Pure: a `Directory` is a snapshot of organizations, users, extensions and apps (what is
stored, with a provisioning file laid over it), and `violations` lists every rule it
breaks. Each entry knows where it came from (`source`: `users[2] ('olga')` for an entry of
the file, None for one that is only stored), and the file's removals are remembered, so
that a message names the entry of the file that caused the problem, not only its victim.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from faxline.auth.context import Role


@dataclass(frozen=True)
class OrgEntry:
    code: str
    source: str | None = None


@dataclass(frozen=True)
class UserEntry:
    uid: str
    organization: str | None
    role: Role
    source: str | None = None


@dataclass(frozen=True)
class ExtensionEntry:
    number: str  # full form; its organization is the part before `*`
    owner: str
    dids: tuple[str, ...] = ()
    source: str | None = None

    @property
    def organization(self) -> str:
        return self.number.partition("*")[0]


@dataclass(frozen=True)
class AppEntry:
    client_id: str
    owner: str
    source: str | None = None


@dataclass
class Directory:
    organizations: dict[str, OrgEntry] = field(default_factory=dict)
    users: dict[str, UserEntry] = field(default_factory=dict)
    extensions: dict[str, ExtensionEntry] = field(default_factory=dict)
    apps: dict[str, AppEntry] = field(default_factory=dict)
    # What the file removes: (section, key) -> `remove.users[0] ('dave')`.
    removed: dict[tuple[str, str], str] = field(default_factory=dict)


def violations(d: Directory) -> list[str]:
    """Every broken rule, each message starting with the entry to blame."""
    return [*_user_rules(d), *_extension_rules(d), *_app_rules(d), *_did_rules(d)]


def _user_rules(d: Directory) -> Iterator[str]:
    for u in d.users.values():
        if u.role is Role.ADMIN and u.organization is not None:
            yield f"{_user(u)}: an admin belongs to no organization"
        elif u.role is not Role.ADMIN and u.organization is None:
            yield f"{_user(u)}: role {u.role.value} needs an organization"
        elif u.organization is not None and u.organization not in d.organizations:
            removal = d.removed.get(("organizations", u.organization))
            if removal is not None and u.source is None:
                yield f"{removal}: user {u.uid!r} is still in it (remove or move them too)"
            else:
                yield f"{_user(u)}: organization {u.organization!r} does not exist"


def _extension_rules(d: Directory) -> Iterator[str]:
    for x in d.extensions.values():
        org = x.organization
        owner = d.users.get(x.owner)
        if org not in d.organizations:
            removal = d.removed.get(("organizations", org))
            if removal is not None and x.source is None:
                yield f"{removal}: extension {x.number!r} is still in it (remove it too)"
            else:
                yield f"{_extension(x)}: organization {org!r} does not exist"
        elif owner is None:
            removal = d.removed.get(("users", x.owner))
            if removal is not None and x.source is None:
                yield (
                    f"{removal}: {x.owner!r} still owns extension {x.number!r} "
                    "(remove it too, or give it another owner)"
                )
            else:
                yield f"{_extension(x)}: owner {x.owner!r} does not exist"
        elif owner.organization != org:
            if x.source is None and owner.source is not None:
                where = (
                    f"organization {owner.organization}"
                    if owner.organization
                    else "no organization (an admin)"
                )
                yield (
                    f"{owner.source}: {owner.uid!r} would be in {where} but owns extension "
                    f"{x.number!r} of organization {org} (move or remove the extension too)"
                )
            else:
                yield f"{_extension(x)}: owner {x.owner!r} is not in organization {org}"


def _app_rules(d: Directory) -> Iterator[str]:
    for a in d.apps.values():
        if a.owner in d.users:
            continue
        removal = d.removed.get(("users", a.owner))
        if removal is not None and a.source is None:
            yield f"{removal}: {a.owner!r} still owns app {a.client_id!r} (remove it too)"
        else:
            where = a.source or f"app {a.client_id!r} (already provisioned)"
            yield f"{where}: owner {a.owner!r} does not exist"


def _did_rules(d: Directory) -> Iterator[str]:
    holders: dict[str, ExtensionEntry] = {}
    # Stored entries first, so that the message blames the entry of the file.
    for x in sorted(d.extensions.values(), key=lambda x: x.source is not None):
        for i, did in enumerate(x.dids):
            if did in x.dids[:i]:
                yield f"{_extension(x)}: DID {did!r} is listed twice"
                continue
            first = holders.setdefault(did, x)
            if first is not x:
                yield f"{_extension(x)}: DID {did!r} already belongs to extension {first.number!r}"


def _user(u: UserEntry) -> str:
    return u.source or f"user {u.uid!r} (already provisioned)"


def _extension(x: ExtensionEntry) -> str:
    return x.source or f"extension {x.number!r} (already provisioned)"
