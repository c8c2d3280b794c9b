"""Validation of what a session is asked to do."""

from __future__ import annotations

import pickle

import pytest

from faxline.fax import MAX_HEADER_LEN, MAX_IDENT_LEN, Direction, FaxError, FaxJob, FaxOptionError


def test_send_and_receive_jobs() -> None:
    job = FaxJob.send("/tmp/out.tif", ident="+1 555 0100", header="Acme Ltd", ecm=False)
    assert job.direction is Direction.SEND
    assert (job.path, job.ident, job.header, job.ecm) == (
        "/tmp/out.tif",
        "+1 555 0100",
        "Acme Ltd",
        False,
    )
    received = FaxJob.receive("/tmp/in.tif", fine=False)
    assert received.direction is Direction.RECEIVE and not received.fine


def test_jobs_pickle() -> None:
    job = FaxJob.send("/tmp/out.tif", ident="123", header="h")
    assert pickle.loads(pickle.dumps(job)) == job


def test_limits_are_inclusive() -> None:
    FaxJob.send("x.tif", ident="1" * MAX_IDENT_LEN, header="h" * MAX_HEADER_LEN)


def test_ident_over_20_characters_is_rejected() -> None:
    with pytest.raises(FaxOptionError, match="local ident is 21 characters long; at most 20"):
        FaxJob.send("x.tif", ident="1" * 21)
    with pytest.raises(FaxOptionError, match="local ident"):
        FaxJob.receive("x.tif", ident="1" * 21)


def test_header_over_50_characters_is_rejected() -> None:
    with pytest.raises(FaxOptionError, match="page header is 51 characters long; at most 50"):
        FaxJob.send("x.tif", header="h" * 51)


def test_non_ascii_text_is_rejected() -> None:
    with pytest.raises(FaxOptionError, match="printable ASCII"):
        FaxJob.send("x.tif", header="Café")
    with pytest.raises(FaxOptionError, match="printable ASCII"):
        FaxJob.send("x.tif", ident="12\n3")


def test_option_errors_are_permanent_value_errors() -> None:
    with pytest.raises(ValueError) as caught:
        FaxJob.send("x.tif", ident="1" * 30)
    assert isinstance(caught.value, FaxError) and caught.value.permanent


def test_receiver_sends_no_header() -> None:
    with pytest.raises(FaxOptionError, match="sending side"):
        FaxJob(Direction.RECEIVE, "in.tif", header="Acme")


def test_path_is_required() -> None:
    with pytest.raises(FaxOptionError, match="path"):
        FaxJob.send("")
