"""`GET /metrics`: the Prometheus text format, for loopback, `FAXLINE_METRICS_ALLOW` and
admin apps.

Without a token only loopback and the allowed networks may scrape (a Prometheus server
rarely holds an OAuth token); anyone else gets 403, or may send an admin app's token.
The counters are this process's (with what its call and conversion workers reported,
see :mod:`faxline.metrics.relay`); the queue's depth is read from the database now, in
one query, so every node tells the truth about the shared queue.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from faxline.api.errors import ApiError
from faxline.api.state import AppState
from faxline.auth.context import Role
from faxline.auth.tokens import authenticate, bearer_value
from faxline.store.depth import Depth, depth

router = APIRouter()


def allowed_peer(host: str | None, networks: tuple[str, ...]) -> bool:
    """Loopback, or an address inside one of `networks` (CIDR blocks)."""
    if host is None:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


class _Scrape:
    """The process's registry plus the database's figures, as one registry to expose."""

    def __init__(self, figures: Depth, now_s: float) -> None:
        self.figures = figures
        self.now_s = now_s

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        f = self.figures
        queue = GaugeMetricFamily(
            "faxline_queue_deliveries", "Unfinished deliveries by status.", labels=["status"]
        )
        for status, n in sorted(f.deliveries.items()):
            queue.add_metric([status], n)
        yield queue
        oldest = f.oldest_due_delivery
        yield GaugeMetricFamily(
            "faxline_queue_oldest_due_seconds",
            "Age of the oldest delivery that is due and waits for a call (0: none).",
            value=max(0.0, self.now_s - oldest.timestamp()) if oldest is not None else 0.0,
        )
        outbox = GaugeMetricFamily(
            "faxline_outbox_pending", "Webhooks and mails waiting to go out.", labels=["channel"]
        )
        ages = GaugeMetricFamily(
            "faxline_outbox_oldest_due_seconds",
            "Age of the oldest due outbox message by channel (0: none).",
            labels=["channel"],
        )
        for channel, n in sorted(f.outbox.items()):
            outbox.add_metric([channel], n)
            first = f.oldest_due_outbox.get(channel)
            age = max(0.0, self.now_s - first.timestamp()) if first is not None else 0.0
            ages.add_metric([channel], age)
        yield outbox
        yield ages


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state: AppState = request.app.state.faxline
    peer = request.client.host if request.client is not None else None
    token = bearer_value(request.headers.get("authorization"))
    now = state.clock()

    def work() -> Depth:
        with state.sessions() as session:
            if not allowed_peer(peer, state.settings.metrics_allow):
                if token is None:
                    raise ApiError(403, "forbidden", f"metrics are not served to {peer}")
                if authenticate(session, token, now).role is not Role.ADMIN:
                    raise ApiError(403, "forbidden", "metrics are for admin apps only")
            return depth(session, now)

    figures = await run_in_threadpool(work)
    body = generate_latest(_Scrape(figures, now.timestamp()))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
