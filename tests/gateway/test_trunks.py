"""Trunk configuration, number rewriting and longest-prefix routing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faxline.delivery.routing import LocalRoute, NoRoute, SimulatorRoute, SipRoute, route
from faxline.directory.provision import ProvisionError, apply, parse
from faxline.directory.trunks import TrunkConfig, to_e164
from faxline.store.db import make_engine, migrate, session_factory


def trunk(**kw: object) -> TrunkConfig:
    return TrunkConfig.model_validate({"uri": "sip:carrier.example", **kw})


@pytest.mark.parametrize(
    ("number", "kw", "expected"),
    [
        ("+15550100200", {}, "+15550100200"),
        ("5550100200", {}, "+15550100200"),
        ("0015550100200", {}, "+15550100200"),
        ("05550100", {"countryCode": "49", "nationalPrefix": "0"}, "+495550100"),
        (
            "+495550100",
            {"numberFormat": "national", "countryCode": "49", "nationalPrefix": "0"},
            "05550100",
        ),
        (
            "+15550100",
            {"numberFormat": "national", "countryCode": "49", "nationalPrefix": "0"},
            "0015550100",
        ),
        ("+15550100200", {"numberFormat": "e164-digits"}, "15550100200"),
        ("9,5550100", {"numberFormat": "as-dialled", "strip": 2}, "5550100"),
        ("5550100", {"numberFormat": "as-dialled", "prepend": "9"}, "95550100"),
    ],
)
def test_rewrite(number: str, kw: dict[str, object], expected: str) -> None:
    assert trunk(**kw).rewrite(number) == expected


@given(
    st.from_regex(r"\+?[0-9]{3,20}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True),
)
def test_e164_always_has_plus_and_digits(number: str, cc: str) -> None:
    out = to_e164(number, cc)
    assert out.startswith("+") and out[1:].isdigit()
    assert to_e164(out, cc) == out  # idempotent


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"uri": "http://x"}, "uri"),
        ({"uri": "sip:x", "prefixes": ["1a"]}, "prefix"),
        ({"uri": "sip:x", "username": "u"}, "username and password go together"),
        ({"uri": "sip:x", "register": True}, "register needs"),
        ({"uri": "sip:x", "t38": "sometimes"}, "t38"),
        ({"uri": "sip:x", "addresses": ["not-an-ip"]}, "address"),
    ],
)
def test_bad_trunks_name_the_entry(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ProvisionError, match=r"trunks\[0\] \('t'\)") as e:
        parse({"trunks": [{"name": "t", **entry}]})
    assert message in str(e.value)


def test_longest_prefix_and_local_first(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    spec = parse(
        {
            "organizations": [{"code": "0003", "name": "Acme"}],
            "users": [{"id": "alice", "organization": "0003"}],
            "extensions": [
                {"number": "0003*210", "owner": "alice", "fax": True, "dids": ["+15550200100"]}
            ],
            "trunks": [
                {"name": "world", "uri": "sip:world.example", "prefixes": ["+", "00"]},
                {"name": "us", "uri": "sip:us.example:5070", "prefixes": ["+1"], "maxCalls": 3},
                {
                    "name": "nyc",
                    "uri": "sip:nyc.example",
                    "prefixes": ["+1212"],
                    "numberFormat": "e164-digits",
                },
            ],
            "routes": [
                {
                    "name": "sim",
                    "type": "simulator",
                    "numbers": {"+12125550000": {"behaviour": "busy"}},
                }
            ],
        }
    )
    with sessions() as s:
        apply(s, spec)
        s.commit()
        r = route(s, "+15550200100")
        assert isinstance(r, LocalRoute) and r.number == "0003*210"
        r = route(s, "+12125551234")
        assert isinstance(r, SipRoute) and (r.route, r.number) == ("nyc", "12125551234")
        r = route(s, "+13105551234")
        assert isinstance(r, SipRoute) and (r.route, r.max_calls) == ("us", 3)
        r = route(s, "+442071234567")
        assert isinstance(r, SipRoute) and r.route == "world"
        assert isinstance(route(s, "+12125550000"), SimulatorRoute)
        assert isinstance(route(s, "5550100"), NoRoute)
    engine.dispose()
