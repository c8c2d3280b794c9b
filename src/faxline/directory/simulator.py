"""The simulated far end: numbers that answer, are busy, never answer, hang up, refuse fine
(or only superfine) resolution or sit behind a lossy line. Provisioned as a route of type
`simulator`."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from faxline.directory.numbers import is_phone_number


def far_end_file(folder: Path, delivery_id: int, attempt: int) -> Path:
    """Where a simulated far end keeps the whole fax that attempt `attempt` of a delivery
    brought (the call writes a `.part` file and renames it here only when all arrived)."""
    return folder / f"delivery-{delivery_id}-{attempt}.tif"


def received_before(folder: Path, delivery_id: int) -> Path | None:
    """A whole fax of `delivery_id` that the far end in `folder` already holds, if any.

    This is what makes the simulator exactly-once where a real network cannot be: both
    ends are ours, so a node that takes over a delivery whose earlier holder died after
    the call but before recording it can ask the far end instead of calling again.
    """
    found = sorted(folder.glob(f"delivery-{delivery_id}-*.tif"))
    return found[0] if found else None


class Behaviour(enum.StrEnum):
    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    HANGUP_AFTER_PAGE = "hangup_after_page"
    REFUSE_FINE = "refuse_fine"
    REFUSE_SUPERFINE = "refuse_superfine"
    LOSSY = "lossy"


class SimulatedNumber(BaseModel):
    """How one simulated number behaves when called."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    behaviour: Behaviour = Behaviour.ANSWER
    page: int = Field(1, ge=1, description="hangup_after_page: hang up after this page")
    loss: float = Field(0.002, ge=0, le=0.5, description="lossy: share of 20 ms blocks lost")
    seed: int = Field(1, description="lossy: seed of the loss pattern, so a run repeats")
    busy_attempts: int = Field(
        0, ge=0, alias="busyAttempts", description="answer busy to this many first attempts"
    )
    ecm: bool = True
    transport: Literal["t38", "audio"] | None = None
    ident: str = Field("faxline simulator", max_length=20)


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    numbers: dict[str, SimulatedNumber]

    @field_validator("numbers")
    @classmethod
    def _phone_numbers(cls, v: dict[str, SimulatedNumber]) -> dict[str, SimulatedNumber]:
        for number in v:
            if not is_phone_number(number):
                raise ValueError(f"simulated number {number!r} is not a phone number")
        return v
