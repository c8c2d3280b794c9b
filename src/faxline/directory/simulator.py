"""The simulated far end: numbers that answer, are busy, never answer, hang up, refuse fine
resolution or sit behind a lossy line. Provisioned as a route of type `simulator`."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from faxline.directory.numbers import is_phone_number


class Behaviour(enum.StrEnum):
    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    HANGUP_AFTER_PAGE = "hangup_after_page"
    REFUSE_FINE = "refuse_fine"
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
