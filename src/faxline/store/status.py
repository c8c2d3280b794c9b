"""Statuses of deliveries and the fax status derived from them (pure)."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.RETRYING})


class FaxStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RECEIVED = "received"


def fax_status(deliveries: Iterable[str]) -> FaxStatus:
    """An outgoing fax's status from its deliveries' statuses."""
    statuses = [DeliveryStatus(s) for s in deliveries]
    if not statuses:
        return FaxStatus.RECEIVED
    if DeliveryStatus.SENDING in statuses:
        return FaxStatus.SENDING
    if any(s in UNFINISHED for s in statuses):
        started = any(s is not DeliveryStatus.QUEUED for s in statuses)
        return FaxStatus.SENDING if started else FaxStatus.QUEUED
    delivered = statuses.count(DeliveryStatus.DELIVERED)
    if delivered == len(statuses):
        return FaxStatus.SENT
    if delivered:
        return FaxStatus.PARTIALLY_SENT
    if DeliveryStatus.FAILED in statuses:
        return FaxStatus.FAILED
    return FaxStatus.CANCELLED
