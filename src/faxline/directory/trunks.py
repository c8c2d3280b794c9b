"""SIP trunks as the provisioning file describes them, and number rewriting (pure).

A trunk serves the number prefixes it lists (longest prefix wins across trunks; local
extensions and DIDs come first). Before a number is sent to a trunk it is rewritten: to
E.164 (`+` country code number) and then to the trunk's format.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from faxline.sip.errors import SipParseError
from faxline.sip.uri import SipUri


class NumberFormat(enum.StrEnum):
    E164 = "e164"  # +15550100200
    E164_DIGITS = "e164-digits"  # 15550100200
    NATIONAL = "national"  # 05550100200 with nationalPrefix "0"
    AS_DIALLED = "as-dialled"  # untouched


class TrunkConfig(BaseModel):
    """A SIP trunk: where to send calls, as whom, which numbers, how many at once."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    uri: str = Field(description="SIP URI of the trunk, e.g. sip:carrier.example:5060")
    proxy: str | None = Field(None, description="outbound proxy (SIP URI) the INVITEs go to")
    username: str | None = None
    password: str | None = None
    registration: bool = Field(False, alias="register", description="REGISTER to the trunk")
    register_expires: int = Field(600, alias="registerExpires", ge=60, le=86400)
    prefixes: list[str] = Field(default_factory=list)
    number_format: NumberFormat = Field(NumberFormat.E164, alias="numberFormat")
    country_code: str = Field("1", alias="countryCode", pattern=r"^[0-9]{1,3}$")
    national_prefix: str = Field("", alias="nationalPrefix", pattern=r"^[0-9]{0,3}$")
    strip: int = Field(0, ge=0, le=20, description="digits removed from the front at the end")
    prepend: str = Field("", pattern=r"^[0-9+*#]{0,10}$")
    caller_id: str | None = Field(None, alias="callerId", pattern=r"^\+?[0-9]{1,20}$")
    t38: Literal["prefer", "never", "only"] = "prefer"
    addresses: list[str] = Field(
        default_factory=list, description="extra source addresses (IPs or networks) for inbound"
    )

    @field_validator("uri", "proxy")
    @classmethod
    def _sip_uri(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            SipUri.parse(v)
        except SipParseError as e:
            raise ValueError(str(e)) from None
        return v

    def next_hop(self) -> tuple[str, int] | None:
        """Where INVITEs go when not to the Request-URI's host: the outbound proxy."""
        if self.proxy is None:
            return None
        proxy = SipUri.parse(self.proxy)
        return proxy.host.strip("[]"), proxy.port or 5060

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p or not all(c.isdigit() and c.isascii() for c in p.removeprefix("+")):
                raise ValueError(f"prefix {p!r} must be digits with an optional leading +")
        return v

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            try:
                ipaddress.ip_network(a, strict=False)
            except ValueError:
                raise ValueError(f"address {a!r} is not an IP address or network") from None
        return v

    @model_validator(mode="after")
    def _credentials(self) -> TrunkConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.registration and self.username is None:
            raise ValueError("register needs a username and password")
        return self

    def matches(self, number: str) -> int:
        """Length of the longest prefix of ours that `number` starts with (0: none)."""
        return max((len(p) for p in self.prefixes if number.startswith(p)), default=0)

    def rewrite(self, number: str) -> str:
        """The number as this trunk wants it in the Request-URI."""
        if self.number_format is NumberFormat.AS_DIALLED:
            out = number
        else:
            e164 = to_e164(number, self.country_code, self.national_prefix)
            if self.number_format is NumberFormat.E164:
                out = e164
            elif self.number_format is NumberFormat.E164_DIGITS:
                out = e164[1:]
            else:
                national = e164[1:]
                if national.startswith(self.country_code):
                    out = self.national_prefix + national[len(self.country_code) :]
                else:
                    out = "00" + national  # international from a national dial plan
        return self.prepend + out[self.strip :]


def to_e164(number: str, country_code: str, national_prefix: str = "") -> str:
    """`+15550100` stays; `0015550100` -> `+15550100`; `5550100` -> `+<cc>5550100`, after
    dropping the national prefix if present."""
    if number.startswith("+"):
        return number
    if number.startswith("00"):
        return "+" + number[2:]
    if national_prefix and number.startswith(national_prefix):
        number = number[len(national_prefix) :]
    return f"+{country_code}{number}"
