"""The metrics faxline exports, each defined once, in the process-wide registry.

Names follow Prometheus' conventions (`faxline_` prefix, `_total` counters, base units).
What the database knows (queue depth, outbox depth) is not kept here: the HTTP layer reads
it at scrape time, so that every node reports the truth about the shared queue.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FAXES_CREATED = Counter(
    "faxline_faxes_created", "Outgoing faxes stored (API, web, mail).", ["organization"]
)
DELIVERIES_FINISHED = Counter(
    "faxline_deliveries_finished",
    "Deliveries that reached a final state, by status and failure reason.",
    ["outcome", "reason"],
)
ATTEMPTS = Counter(
    "faxline_attempts",
    "Calls placed for deliveries, by transport (t38, audio, none) and trunk (route).",
    ["transport", "trunk", "outcome"],
)
PAGES = Counter(
    "faxline_pages",
    "Fax pages transferred by a T.30 session, sent or received.",
    ["direction"],
)
T30_COMPLETIONS = Counter(
    "faxline_t30_completions",
    "T.30 sessions ended, by completion code (0 is OK) and side.",
    ["code", "direction"],
)
SIP_RESPONSES = Counter(
    "faxline_sip_final_responses",
    "Final SIP responses to our INVITEs, by trunk and status code.",
    ["trunk", "status"],
)
INBOUND_CALLS = Counter(
    "faxline_inbound_calls",
    "Incoming SIP calls, by trunk and how they ended (received, failed, rejected).",
    ["trunk", "outcome"],
)
CALLS_IN_PROGRESS = Gauge(
    "faxline_calls_in_progress",
    "Calls up now in this process, by direction and trunk.",
    ["direction", "trunk"],
)
CALL_LIMIT = Gauge(
    "faxline_call_limit",
    "How many calls this process may hold at once, by direction.",
    ["direction"],
)
CONVERSIONS = Counter(
    "faxline_conversions", "Document conversions, by result (ok, error).", ["result"]
)
CONVERTED_PAGES = Counter(
    "faxline_converted_pages", "Fax pages made by conversion workers from documents."
)
CONVERSION_SECONDS = Histogram(
    "faxline_conversion_seconds",
    "How long a conversion of a fax's documents took.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
CREATE_FAX_SECONDS = Histogram(
    "faxline_create_fax_seconds",
    "Latency of Create Faxes (POST /uapi/faxes/...), by HTTP status.",
    ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
