"""Who the caller is and what it may reach (pure rules, DESIGN.md section 1 "Contexts").

An app acts in the context of its owner's role: a *user* app only for its owner, an
*organization* app for anyone in that organization, an *admin* app for everyone. Anything
outside the context is reported as not found, so that it does not leak that it exists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    USER = "user"
    ORGANIZATION = "organization"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The owner of the access token, as the app acts for it."""

    user_id: int
    uid: str
    role: Role
    organization_id: int | None
    app_id: int

    def sees(self, organization_id: int | None) -> bool:
        """Whether things of this organization are inside the caller's context."""
        if self.role is Role.ADMIN:
            return True
        return organization_id is not None and organization_id == self.organization_id

    def may_act_for(self, user_id: int, organization_id: int | None) -> bool:
        """Whether the caller may send or read as this user."""
        if self.role is Role.ADMIN:
            return True
        if self.role is Role.ORGANIZATION:
            return self.sees(organization_id)
        return user_id == self.user_id
