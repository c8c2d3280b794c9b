"""The pure helpers in front of the parsers and the logs: JSON depth, secret redaction."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from faxline.api.jsonlimits import nesting_depth
from faxline.api.redact import REDACTED, redact

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_depth_of_any_json_text(value: Any) -> None:
    assert nesting_depth(json.dumps(value)) == depth_of(value)
    assert nesting_depth(json.dumps(value, ensure_ascii=False, indent=1)) == depth_of(value)


def test_depth_ignores_brackets_in_strings_and_escapes() -> None:
    assert nesting_depth(r'{"a": "[[[\"{{"}') == 1
    assert nesting_depth("[" * 10_000) == 10_000


# Marked, so that a secret cannot also be some other part of the line ("127.0.0.").
secrets = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=8
).map(lambda s: "QQ" + s)


@given(secrets, st.sampled_from(["accessRequestToken", "access_token", "client_secret"]))
def test_secret_query_values_are_redacted(secret: str, name: str) -> None:
    for line in (
        f'127.0.0.1:5 - "GET /uapi/faxes/@me/210?{name}={secret} HTTP/1.1" 200',
        f'"GET /x?startIndex=0&{name}=Bearer%20{secret}&count=1 HTTP/1.1"',
        f'"GET /x?{name}=Bearer+{secret}"',
        f"Authorization: Bearer {secret}",
    ):
        out = redact(line)
        assert secret not in out, line
        assert REDACTED in out


def test_other_query_values_stay() -> None:
    line = '"GET /uapi/faxes/@me/210?startIndex=3&count=10&direction=in HTTP/1.1" 200'
    assert redact(line) == line
