"""/metrics on the API, and a count and latency of every request by route template and status.

Requests are labelled by the template of the route that answered
(``/v2.0/ports/{item_id}``), never by the raw path: one series per route, not
one per port ID a client ever asked for. Paths no route matches share one label.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portsec import metrics

UNMATCHED = "unmatched"  # the route label of paths no route knows (404s of scanners, typos)

REQUESTS = Counter(
    "portsec_api_requests_total", "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "portsec_api_request_duration_seconds", "From a request's arrival to the end of its response",
    ["method", "route"], buckets=metrics.FAST_BUCKETS,
)  # fmt: skip


def route_template(scope: Scope) -> str:
    """The path template of the route the router chose (it records the route in the scope), else UNMATCHED."""
    route: Any = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


class RequestMetrics:
    """ASGI middleware: plain ASGI, so it sees the scope the router writes the matched route into."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            method, route = scope["method"], route_template(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """The /metrics route (no token: Prometheus scrapes it; bind the API where only the scraper reaches it)."""

    def scrape() -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestMetrics)
