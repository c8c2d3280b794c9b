"""Statuses and reasons in plain words for people (the API keeps its codes)."""

from __future__ import annotations

import datetime as dt

DELIVERY_WORDS = {
    "queued": "Waiting to be sent",
    "sending": "Sending",
    "retrying": "Will try again",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

FAX_WORDS = {
    "queued": "Waiting to be sent",
    "sending": "Sending",
    "sent": "Sent",
    "partially_sent": "Partly sent",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "received": "Received",
}

REASON_WORDS = {
    "busy": "the line was busy",
    "no_answer": "nobody answered",
    "cancelled": "cancelled by a person",
    "invalid_number": "the number does not exist",
    "t30_failure": "the fax machines could not complete the call",
    "rejected": "the far end refused the document",
}


def delivery_words(status: str) -> str:
    return DELIVERY_WORDS.get(status, status.replace("_", " "))


def fax_words(status: str) -> str:
    return FAX_WORDS.get(status, status.replace("_", " "))


def reason_words(reason: str | None) -> str | None:
    if reason is None:
        return None
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def shown_time(t: dt.datetime) -> str:
    """A stored time as the pages show it: UTC, to the minute."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
