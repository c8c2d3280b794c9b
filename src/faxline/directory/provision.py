"""`faxline provision`: apply a declarative file of tenants and apps (idempotent).

First the file's shape is checked (`provision_file`). Then the directory the file would
leave behind (what is stored, the file's entries laid over it, its removals taken out) is
checked against the tenancy rules (`tenancy`), so that a file is judged by its result and
not only by its own lines. Only then is anything written, in the caller's one transaction:
a bad file changes nothing.

An app whose secret changes, whose owner changes, or that is removed loses its access
tokens in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, aliased

from faxline.auth.context import Role
from faxline.auth.secrets import hash_secret, verify_secret
from faxline.directory.numbers import split_full
from faxline.directory.provision_file import (
    AppSpec,
    ProvisionError,
    ProvisionFile,
    RemoveSpec,
    UserSpec,
    load,
    parse,
)
from faxline.directory.simulator import SimulatorConfig
from faxline.directory.tenancy import (
    AppEntry,
    Directory,
    ExtensionEntry,
    OrgEntry,
    UserEntry,
    violations,
)
from faxline.documents.cover import TemplateError, check_template
from faxline.store.blobs import BlobWrites
from faxline.store.models import (
    App,
    Delivery,
    Extension,
    Fax,
    Organization,
    Route,
    Token,
    User,
    WebhookEndpoint,
)
from faxline.store.status import UNFINISHED

__all__ = ["ProvisionError", "ProvisionReport", "apply", "load", "parse", "planned"]

_MAX_PROBLEMS = 20  # a file with more is shown this many, and how many more there are
_SECTIONS = ("organizations", "users", "extensions", "apps")


@dataclass
class ProvisionReport:
    """What a file did: entries applied per section, keys removed, tokens revoked."""

    applied: dict[str, int]
    removed: dict[str, list[str]] = field(default_factory=dict)
    removed_faxes: int = 0
    revoked_tokens: int = 0
    # Fax documents of removed faxes: deleted with the transaction (discard_documents).
    documents: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report after `provisioned ...`, one line per kind of change (or none)."""
        out = []
        gone = [f"{len(keys)} {section} ({', '.join(keys)})" for section, keys in
                self.removed.items() if keys]  # fmt: skip
        if self.removed_faxes:
            gone.append(f"{self.removed_faxes} faxes")
        if gone:
            out.append("removed " + ", ".join(gone))
        if self.revoked_tokens:
            out.append(f"revoked {self.revoked_tokens} access tokens")
        return out

    def discard_documents(self, writes: BlobWrites) -> None:
        for name in self.documents:
            writes.delete(name)


def apply(session: Session, spec: ProvisionFile) -> ProvisionReport:
    """Check what `spec` would leave, then create, update and remove; the caller commits."""
    _check_lists(spec)
    expected = planned(stored(session), spec)
    templates, template_problems = _cover_templates(spec)
    problems = violations(expected) + _fax_problems(session, spec.remove) + template_problems
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        raise ProvisionError(shown + (f"; and {more} more" if more > 0 else ""))

    report = ProvisionReport(
        applied={
            "organizations": len(spec.organizations),
            "users": len(spec.users),
            "extensions": len(spec.extensions),
            "apps": len(spec.apps),
            "routes": len(spec.routes),
            "trunks": len(spec.trunks),
        }
    )
    _write(session, spec, report, templates)
    _remove(session, spec.remove, report)
    session.flush()
    if _shape(stored(session)) != _shape(expected):  # a fault of ours, never of the file
        raise RuntimeError("provisioning wrote a different directory than it checked")
    return report


def stored(session: Session) -> Directory:
    """The directory as the database holds it (every entry's source is None)."""
    owner = aliased(User)
    d = Directory()
    for (code,) in session.execute(select(Organization.code)):
        d.organizations[code] = OrgEntry(code)
    users = select(User.uid, User.role, Organization.code).outerjoin(
        Organization, User.organization_id == Organization.id
    )
    for uid, role, org in session.execute(users):
        d.users[uid] = UserEntry(uid, org, Role(role))
    extensions = select(Extension.number, owner.uid, Extension.dids).join(
        owner, Extension.owner_id == owner.id
    )
    for number, uid, dids in session.execute(extensions):
        d.extensions[number] = ExtensionEntry(number, uid, tuple(dids or ()))
    apps = select(App.client_id, owner.uid).join(owner, App.owner_id == owner.id)
    for client_id, uid in session.execute(apps):
        d.apps[client_id] = AppEntry(client_id, uid)
    return d


def planned(current: Directory, spec: ProvisionFile) -> Directory:
    """The directory `spec` would leave, laid over `current` (pure)."""
    d = Directory(
        organizations=dict(current.organizations),
        users=dict(current.users),
        extensions=dict(current.extensions),
        apps=dict(current.apps),
    )
    for i, o in enumerate(spec.organizations):
        d.organizations[o.code] = OrgEntry(o.code, f"organizations[{i}] ({o.code!r})")
    for i, u in enumerate(spec.users):
        d.users[u.id] = UserEntry(u.id, u.organization, u.role, f"users[{i}] ({u.id!r})")
    for i, x in enumerate(spec.extensions):
        d.extensions[x.number] = ExtensionEntry(
            x.number, x.owner, tuple(x.dids), f"extensions[{i}] ({x.number!r})"
        )
    for i, a in enumerate(spec.apps):
        d.apps[a.client_id] = AppEntry(a.client_id, a.owner, f"apps[{i}] ({a.client_id!r})")
    for section in _SECTIONS:
        entries: dict[str, object] = getattr(d, section)
        for i, key in enumerate(getattr(spec.remove, section)):
            d.removed[(section, key)] = f"remove.{section}[{i}] ({key!r})"
            entries.pop(key, None)
    return d


def _shape(d: Directory) -> tuple[object, ...]:
    """A directory without the sources of its entries, to compare two of them."""
    return (
        sorted(d.organizations),
        sorted((u.uid, u.organization, u.role) for u in d.users.values()),
        sorted((x.number, x.owner, sorted(x.dids)) for x in d.extensions.values()),
        sorted((a.client_id, a.owner) for a in d.apps.values()),
    )


def _check_lists(spec: ProvisionFile) -> None:
    """Each key once per section, and never both provisioned and removed."""
    given = {
        "organizations": [o.code for o in spec.organizations],
        "users": [u.id for u in spec.users],
        "extensions": [x.number for x in spec.extensions],
        "apps": [a.client_id for a in spec.apps],
        "routes": [r.name for r in spec.routes] + [t.name for t in spec.trunks],
    }
    for section, keys in given.items():
        _unique(section, keys)
    remove = spec.remove
    for section in (*_SECTIONS, "routes", "faxesOf"):
        removed: list[str] = getattr(remove, "faxes_of" if section == "faxesOf" else section)
        _unique(f"remove.{section}", removed)
        kept = set(given.get(section, ()))
        for i, key in enumerate(removed):
            if key in kept:
                raise ProvisionError(
                    f"remove.{section}[{i}] ({key!r}): also listed in {section}; "
                    "an entry is either provisioned or removed"
                )
    for i, number in enumerate(remove.faxes_of):
        if number not in remove.extensions:
            raise ProvisionError(
                f"remove.faxesOf[{i}] ({number!r}): faxes are deleted only with their "
                "extension (list it in remove.extensions too)"
            )


def _unique(section: str, keys: list[str]) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise ProvisionError(f"{section}[{i}] ({key!r}): listed twice")
        seen.add(key)


def _fax_problems(session: Session, remove: RemoveSpec) -> list[str]:
    """An extension with faxes goes only with `faxesOf`, and not while any is being sent."""
    if not remove.extensions:
        return []
    faxes = dict(
        session.execute(
            select(Extension.number, func.count(Fax.id))
            .join(Fax, Fax.extension_id == Extension.id)
            .where(Extension.number.in_(remove.extensions))
            .group_by(Extension.number)
        ).all()
    )
    busy = dict(
        session.execute(
            select(Extension.number, func.count(Delivery.id))
            .join(Fax, Fax.extension_id == Extension.id)
            .join(Delivery, Delivery.fax_id == Fax.id)
            .where(Extension.number.in_(remove.faxes_of))
            .where(Delivery.status.in_([s.value for s in UNFINISHED]))
            .group_by(Extension.number)
        ).all()
    )
    problems = []
    for i, number in enumerate(remove.extensions):
        if faxes.get(number) and number not in remove.faxes_of:
            problems.append(
                f"remove.extensions[{i}] ({number!r}): the extension has {faxes[number]} "
                "faxes (list it in remove.faxesOf to delete them with it)"
            )
    for i, number in enumerate(remove.faxes_of):
        if busy.get(number):
            problems.append(
                f"remove.faxesOf[{i}] ({number!r}): {busy[number]} deliveries of its faxes "
                "are not finished (cancel them first: DELETE /uapi/faxes/...)"
            )
    return problems


def _cover_templates(spec: ProvisionFile) -> tuple[dict[str, str | None], list[str]]:
    """Each organization's cover template, read and checked; and what is wrong with them."""
    templates: dict[str, str | None] = {}
    problems: list[str] = []
    for i, o in enumerate(spec.organizations):
        if o.cover_template is None:
            templates[o.code] = None
            continue
        where = f"organizations[{i}] ({o.code!r}).coverTemplate"
        try:
            template = Path(o.cover_template).read_text(encoding="utf-8")
            check_template(template)
        except OSError as e:
            problems.append(f"{where}: cannot read {o.cover_template}: {e.strerror}")
        except UnicodeDecodeError:
            problems.append(f"{where}: {o.cover_template} is not UTF-8 text")
        except TemplateError as e:
            problems.append(f"{where}: {e}")
        else:
            templates[o.code] = template
    return templates, problems


def _write(
    session: Session,
    spec: ProvisionFile,
    report: ProvisionReport,
    templates: dict[str, str | None],
) -> None:
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    users = {u.uid: u for u in session.scalars(select(User))}

    for o in spec.organizations:
        org = orgs.get(o.code)
        if org is None:
            org = orgs[o.code] = Organization(code=o.code, name=o.name)
            session.add(org)
        org.name = o.name
        org.cover_template = templates.get(o.code)
    session.flush()

    for u in spec.users:
        user = users.get(u.id)
        if user is None:
            user = users[u.id] = User(uid=u.id)
            session.add(user)
        user.role = u.role.value
        user.organization_id = orgs[u.organization].id if u.organization else None
        user.email = u.email
        user.fax_extension = u.fax_extension
        _set_password(user, u)
    session.flush()

    extensions = {x.number: x for x in session.scalars(select(Extension))}
    for x in spec.extensions:
        code, short = split_full(x.number)
        ext = extensions.get(x.number)
        if ext is None:
            ext = Extension(number=x.number, short=short, organization_id=orgs[code].id)
            session.add(ext)
        ext.owner_id = users[x.owner].id
        ext.fax_enabled = x.fax
        ext.caller_id = x.caller_id
        ext.header = x.header
        ext.dids = list(x.dids)
        ext.emails = list(x.email) or None
    session.flush()

    apps = {a.client_id: a for a in session.scalars(select(App))}
    for a in spec.apps:
        app = apps.get(a.client_id)
        owner_id = users[a.owner].id
        if app is None:
            app = App(client_id=a.client_id, secret_hash="", owner_id=owner_id)
            session.add(app)
            _set_secret(app, a)
            continue
        rekeyed = _set_secret(app, a)
        if rekeyed or app.owner_id != owner_id:
            # A token was issued for this secret, acting for this owner: neither holds now.
            report.revoked_tokens += _revoke(session, [app.id])
        app.owner_id = owner_id
    session.flush()
    for a in spec.apps:
        _set_webhooks(session, apps.get(a.client_id) or _app(session, a.client_id), a)
    session.flush()

    routes = {r.name: r for r in session.scalars(select(Route))}
    for r in spec.routes:
        route = routes.get(r.name)
        if route is None:
            route = routes[r.name] = Route(name=r.name)
            session.add(route)
        route.kind = r.type
        route.max_calls = r.max_calls
        route.config = SimulatorConfig(numbers=r.numbers).model_dump(mode="json", by_alias=True)
    for t in spec.trunks:
        route = routes.get(t.name)
        if route is None:
            route = routes[t.name] = Route(name=t.name)
            session.add(route)
        route.kind = "trunk"
        route.max_calls = t.max_calls
        route.config = t.config()
    session.flush()


def _set_password(user: User, spec: UserSpec) -> None:
    """The file's password; a user without one in the file cannot sign in."""
    if spec.password_hash is not None:
        user.password_hash = spec.password_hash
    elif spec.password is None:
        user.password_hash = None
    elif not (user.password_hash and verify_secret(user.password_hash, spec.password)):
        # Hashed only when it changed: argon2 is slow on purpose.
        user.password_hash = hash_secret(spec.password)


def _app(session: Session, client_id: str) -> App:
    return session.scalars(select(App).where(App.client_id == client_id)).one()


def _set_webhooks(session: Session, app: App, spec: AppSpec) -> None:
    """Make the app's endpoints those of the file, keyed by url: an endpoint that stays
    keeps its pending messages (with a new secret or events if the file says so)."""
    current = {
        e.url: e
        for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.app_id == app.id))
    }
    for w in spec.webhooks:
        endpoint = current.pop(w.url, None)
        if endpoint is None:
            endpoint = WebhookEndpoint(app_id=app.id, url=w.url)
            session.add(endpoint)
        endpoint.secret = w.secret
        endpoint.events = list(w.events) if w.events is not None else None
    for gone in current.values():
        session.delete(gone)


def _set_secret(app: App, spec: AppSpec) -> bool:
    """Give the app the file's secret; whether that is a new one (not what it had)."""
    if spec.client_secret_hash is not None:
        if spec.client_secret_hash == (app.provisioned_hash or app.secret_hash):
            return False  # the same hash; secret_hash may have been upgraded since: keep it
        app.secret_hash = app.provisioned_hash = spec.client_secret_hash
        return True
    assert spec.client_secret is not None
    if app.secret_hash and verify_secret(app.secret_hash, spec.client_secret):
        return False
    app.secret_hash = hash_secret(spec.client_secret)
    app.provisioned_hash = None
    return True


def _revoke(session: Session, app_ids: Iterable[int]) -> int:
    result = session.execute(delete(Token).where(Token.app_id.in_(list(app_ids))))
    return int(getattr(result, "rowcount", 0) or 0)


def _remove(session: Session, remove: RemoveSpec, report: ProvisionReport) -> None:
    """Delete what the file removes, dependents first (the checks made sure it may go)."""
    apps = dict(
        session.execute(select(App.client_id, App.id).where(App.client_id.in_(remove.apps))).all()
    )
    if apps:
        report.revoked_tokens += _revoke(session, apps.values())
        session.execute(delete(App).where(App.id.in_(list(apps.values()))))
    report.removed["apps"] = [k for k in remove.apps if k in apps]

    extensions = dict(
        session.execute(
            select(Extension.number, Extension.id).where(Extension.number.in_(remove.extensions))
        ).all()
    )
    doomed = [extensions[n] for n in remove.faxes_of if n in extensions]
    if doomed:
        report.documents = list(
            session.scalars(select(Fax.document).where(Fax.extension_id.in_(doomed)))
        )
        report.removed_faxes = len(report.documents)
        # Documents, deliveries and attempts go with their fax (ON DELETE CASCADE).
        session.execute(delete(Fax).where(Fax.extension_id.in_(doomed)))
    if extensions:
        session.execute(delete(Extension).where(Extension.id.in_(list(extensions.values()))))
    report.removed["extensions"] = [k for k in remove.extensions if k in extensions]

    users = dict(session.execute(select(User.uid, User.id).where(User.uid.in_(remove.users))).all())
    if users:
        # Faxes they sent from others' extensions stay; only the link to them goes.
        ids = list(users.values())
        session.execute(update(Fax).where(Fax.created_by_id.in_(ids)).values(created_by_id=None))
        session.execute(delete(User).where(User.id.in_(ids)))
    report.removed["users"] = [k for k in remove.users if k in users]

    orgs = list(
        session.scalars(
            select(Organization.code).where(Organization.code.in_(remove.organizations))
        )
    )
    if orgs:
        session.execute(delete(Organization).where(Organization.code.in_(orgs)))
    report.removed["organizations"] = [k for k in remove.organizations if k in orgs]

    routes = list(session.scalars(select(Route.name).where(Route.name.in_(remove.routes))))
    if routes:
        session.execute(delete(Route).where(Route.name.in_(routes)))
    report.removed["routes"] = [k for k in remove.routes if k in routes]
