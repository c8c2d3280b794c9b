"""Number formats: extension numbers (full `0003*210`, short `210`) and phone numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FULL = re.compile(r"([0-9]{1,10})\*([0-9]{1,10})")
_SHORT = re.compile(r"[0-9]{1,10}")
_PHONE = re.compile(r"\+?[0-9]{3,20}")


class NumberError(ValueError):
    """A number that is not well formed."""


@dataclass(frozen=True)
class ExtensionRef:
    """An extension as written in a URL or a recipient list."""

    short: str
    organization: str | None = None  # None: short form, resolved in some organization

    @property
    def full(self) -> str | None:
        return f"{self.organization}*{self.short}" if self.organization is not None else None

    def __str__(self) -> str:
        return self.full or self.short


def parse_extension(text: str) -> ExtensionRef:
    """Parse `OOOO*EEE` or `EEE`; anything else (including `@self`) is a NumberError."""
    if m := _FULL.fullmatch(text):
        return ExtensionRef(short=m.group(2), organization=m.group(1))
    if _SHORT.fullmatch(text):
        return ExtensionRef(short=text)
    if text == "@self":
        raise NumberError("@self is not allowed as the sending extension")
    raise NumberError(f"{text!r} is not an extension number (expected like 0003*210 or 210)")


def split_full(number: str) -> tuple[str, str]:
    """`0003*210` -> (`0003`, `210`)."""
    m = _FULL.fullmatch(number)
    if not m:
        raise NumberError(f"{number!r} is not a full extension number")
    return m.group(1), m.group(2)


def is_phone_number(text: str) -> bool:
    """3 to 20 digits with an optional leading `+`."""
    return _PHONE.fullmatch(text) is not None


def is_extension_form(text: str) -> bool:
    return _FULL.fullmatch(text) is not None
