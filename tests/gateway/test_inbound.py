"""Who may call in (pure rules)."""

from __future__ import annotations

import ipaddress

from faxline.gateway.inbound import InboundTarget, Reject, admit, called_number, number_variants

NETS = [ipaddress.ip_network("127.0.0.2"), ipaddress.ip_network("10.9.0.0/16")]
TARGET = InboundTarget(extension_id=1, number="0003*210", ident="+15550100210")


def test_only_trunks_may_call() -> None:
    assert admit("127.0.0.2", "0003*210", NETS, TARGET, 0, 5) == TARGET
    assert admit("10.9.3.4", "0003*210", NETS, TARGET, 0, 5) == TARGET
    assert admit("127.0.0.1", "0003*210", NETS, TARGET, 0, 5) == Reject(
        403, "Forbidden (not a provisioned trunk)"
    )
    assert admit("garbage", "0003*210", NETS, TARGET, 0, 5).status == 403  # type: ignore[union-attr]


def test_unknown_number_and_capacity() -> None:
    assert admit("127.0.0.2", "999", NETS, None, 0, 5) == Reject(404, "Not Found")
    assert admit("127.0.0.2", None, NETS, TARGET, 0, 5) == Reject(404, "Not Found")
    assert admit("127.0.0.2", "0003*210", NETS, TARGET, 5, 5) == Reject(486, "Busy Here")


def test_called_number() -> None:
    assert called_number("+15550100;npdi;rn=+1555") == "+15550100"
    assert called_number("0003%2A210") == "0003*210"
    assert called_number("") is None and called_number(None) is None
    assert number_variants("+1555") == ["+1555", "1555", "+1555"]
