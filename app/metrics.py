"""Prometheus metrics of the process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "juisteplek_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "juisteplek_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
OLDEST_REPORT_AGE = Gauge(
    "juisteplek_capacity_oldest_report_age_seconds",
    "Age of the oldest current capacity report per care type",
    ["care_type"],
    registry=REGISTRY,
)
PARTNER_PULLS = Counter(
    "juisteplek_partner_pulls_total",
    "Pulls of a partner region's capacity snapshot by outcome (ok, error)",
    ["partner", "outcome"],
    registry=REGISTRY,
)
PARTNER_REACHABLE = Gauge(
    "juisteplek_partner_reachable",
    "1 when the last pull of the partner region succeeded, 0 when it does not answer",
    ["partner"],
    registry=REGISTRY,
)
PARTNER_LAST_FETCH = Gauge(
    "juisteplek_partner_last_fetch_timestamp_seconds",
    "Unix time of the last successful pull of the partner region",
    ["partner"],
    registry=REGISTRY,
)
