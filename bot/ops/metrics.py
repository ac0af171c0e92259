"""Prometheus metrics at /metrics, restricted to loopback, configured networks or the admin token.

Counters the request path updates live here; figures other parts already keep (retries
deduplicated, customer-service errors, index size, reloads, query-log failures) are read at
scrape time by a collector, so that no module needs to know about Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.admin.guard import check_bearer
from bot.keys import (
    ADMIN_AUTH,
    CONFIG,
    CUSTOMER_SERVICE,
    ENGINE,
    INFLIGHT,
    NONCES,
    QUERYLOG,
    STATE,
)
from bot.ops.admission import QUEUE_FULL, WAITED_TOO_LONG
from bot.ops.proxy import client_address, in_networks, local_caller

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per app (tests run many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter(
            "bot_questions", "Questions answered, by message type and outcome",
            ["type", "outcome"], registry=self.registry,
        )
        self.latency = Histogram(
            "bot_reply_latency_seconds", "Time from request to reply on the webhook",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=self.registry,
        )
        self.requests = Counter(
            "bot_webhook_requests", "Webhook requests by HTTP status", ["status"],
            registry=self.registry,
        )
        self.deduplicated_shared = Counter(
            "bot_retries_deduplicated_shared", "Retries answered with the reply another "
            "instance computed", registry=self.registry,
        )
        self.cs_sent = Counter(
            "bot_customer_service_sent", "Late answers sent as customer-service messages",
            registry=self.registry,
        )


METRICS = web.AppKey("metrics", Metrics)


class AppCollector(Collector):
    """Reads the app's own counters at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        app = self.app
        yield CounterMetricFamily("bot_retries_deduplicated", "WeChat retries answered from "
                                  "the first try", value=app[INFLIGHT].deduplicated)
        state = app.get(STATE)
        if state is not None:
            yield CounterMetricFamily("bot_state_degraded", "Shared-state operations served "
                                      "from this instance's memory (Redis unreachable)",
                                      value=state.degraded)
        yield CounterMetricFamily("bot_replays_refused", "Requests refused because their "
                                  "timestamp and nonce were used with another body",
                                  value=app[NONCES].refused)
        errors = CounterMetricFamily("bot_customer_service_errors",
                                     "Customer-service send errors by WeChat code", labels=["code"])
        sender = app.get(CUSTOMER_SERVICE)
        for code, count in (sender.errors if sender else {}).items():
            errors.add_metric([str(code)], count)
        yield errors
        engine = app.get(ENGINE)
        if engine is not None:
            index = engine.index
            yield GaugeMetricFamily("bot_index_passages", "Passages in the served index",
                                    value=len(index.passages))
            yield GaugeMetricFamily("bot_index_documents", "Documents in the served index",
                                    value=sum(1 for f in index.files.values() if f.passages))
            yield GaugeMetricFamily("bot_index_failed_files", "Knowledge files that failed",
                                    value=sum(1 for f in index.files.values() if f.error))
            yield GaugeMetricFamily("bot_index_last_reload_timestamp_seconds",
                                    "When the served index was last (re)loaded",
                                    value=engine.loaded_at)
            yield CounterMetricFamily("bot_index_reloads", "Index reloads swapped in",
                                      value=engine.reloads)
            yield CounterMetricFamily("bot_index_reload_failures", "Index rebuilds that failed",
                                      value=engine.reload_failures)
            admission = engine.admission
            shed = CounterMetricFamily("bot_questions_shed", "Questions shed unanswered under "
                                       "overload (logged with delivery 'shed')",
                                       labels=["reason"])
            for reason in (QUEUE_FULL, WAITED_TOO_LONG):
                shed.add_metric([reason], admission.shed[reason])
            yield shed
            yield GaugeMetricFamily("bot_questions_waiting", "Questions waiting for the model",
                                    value=admission.waiting)
        querylog = app.get(QUERYLOG)
        if querylog is not None:
            yield GaugeMetricFamily("bot_querylog_pending_rows", "Rows held in memory "
                                    "while the database is unreachable",
                                    value=getattr(querylog, "pending", 0))
            yield CounterMetricFamily("bot_querylog_write_failures",
                                      "Query-log writes that failed (the question was "
                                      "answered but not stored)", value=querylog.failures)


async def allowed(request: web.Request) -> bool:
    """Loopback or [metrics] allow; or the admin token, braked and logged exactly as on /admin
    (raises 401/429), so /metrics is no faster oracle for the token than the admin login."""
    header = request.headers.get("Authorization", "")
    auth = request.app.get(ADMIN_AUTH)
    if auth is not None and header[:7].lower() == "bearer ":
        await check_bearer(request, auth, header[7:].strip(), "metrics")
        return True
    allow = request.app[CONFIG].metrics.allow
    return local_caller(request) or in_networks(client_address(request), allow, loopback=False)


async def metrics_view(request: web.Request) -> web.Response:
    if not await allowed(request):
        return web.Response(status=403, text="metrics: not allowed from this address")
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def setup_metrics(app: web.Application) -> None:
    metrics = Metrics()
    metrics.registry.register(AppCollector(app))
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_view)

