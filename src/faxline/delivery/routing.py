"""Where a destination number goes: a fax-enabled extension of this server, a simulated far
end, or nowhere (`no_route`). Local extensions win over every other route."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from faxline.directory.numbers import is_extension_form, split_full
from faxline.directory.simulator import SimulatedNumber, SimulatorConfig
from faxline.directory.trunks import TrunkConfig
from faxline.store.models import Extension, Organization, Route


@dataclass(frozen=True)
class LocalRoute:
    """Deliver over the in-process line into this extension's inbox."""

    extension_id: int
    number: str
    ident: str
    route: str = "local"


@dataclass(frozen=True)
class SimulatorRoute:
    number: str
    behaviour: SimulatedNumber
    route: str
    max_calls: int


@dataclass(frozen=True)
class SipRoute:
    """Call the number through a SIP trunk."""

    number: str  # as the trunk wants it
    trunk: TrunkConfig
    route: str
    max_calls: int


@dataclass(frozen=True)
class NoRoute:
    reason: str
    route: str = "none"


Destination = LocalRoute | SimulatorRoute | SipRoute | NoRoute


def route(session: Session, destination: str) -> Destination:
    """The route for a delivery's destination (full extension number or phone number)."""
    if is_extension_form(destination):
        code, short = split_full(destination)
        ext = session.scalar(
            select(Extension)
            .join(Organization, Extension.organization_id == Organization.id)
            .where(Organization.code == code, Extension.short == short)
        )
        if ext is None:
            return NoRoute(f"no extension {destination} on this server")
        if not ext.fax_enabled:
            return NoRoute(f"extension {destination} does not receive faxes")
        return LocalRoute(extension_id=ext.id, number=ext.number, ident=ext.caller_id or "")

    for ext in session.scalars(select(Extension).where(Extension.fax_enabled.is_(True))):
        if destination in ext.dids:
            return LocalRoute(extension_id=ext.id, number=ext.number, ident=ext.caller_id or "")

    # Longest prefix wins; a simulated number is an exact match and beats any prefix.
    best: tuple[int, Destination] | None = None
    for r in session.scalars(select(Route).order_by(Route.id)):
        candidate: Destination
        if r.kind == "simulator":
            numbers = SimulatorConfig.model_validate(r.config).numbers
            if destination not in numbers:
                continue
            score = 1000 + len(destination)
            candidate = SimulatorRoute(
                number=destination,
                behaviour=numbers[destination],
                route=r.name,
                max_calls=r.max_calls,
            )
        elif r.kind == "trunk":
            trunk = TrunkConfig.model_validate(r.config)
            score = trunk.matches(destination)
            if not score:
                continue
            candidate = SipRoute(
                number=trunk.rewrite(destination), trunk=trunk, route=r.name, max_calls=r.max_calls
            )
        else:
            continue
        if best is None or score > best[0]:
            best = (score, candidate)
    return best[1] if best is not None else NoRoute(f"no route serves {destination}")
