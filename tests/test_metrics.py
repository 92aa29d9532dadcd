"""``GET /metrics``: what came in, what waits, for operators only, with no tenant data in the labels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, make_settings, start_gateway
from tests.helpers import FIXTURES, source_headers

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def gateway(db_url: str) -> Iterator[Gateway]:
    # no worker: the deliveries stay pending, so the outbox gauges have something to show
    yield from start_gateway(make_settings(db_url, worker=False, allowed_target_cidrs=["127.0.0.0/8"]))


def scrape(gateway: Gateway) -> tuple[str, Samples]:
    response = gateway.client.get("/metrics", headers=gateway.operator_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def test_metrics_count_webhooks_by_vendor_and_outcome_and_show_what_waits(gateway: Gateway) -> None:
    _, before = scrape(gateway)  # the gauges read the database, which PostgreSQL's tests share

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return samples[(name, labels)] - before[(name, labels)]

    subscription = gateway.client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=gateway.headers
    )
    assert subscription.status_code == 201
    source = gateway.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
    headers = source_headers(source, body)
    assert gateway.post_hook(source, body, headers).status_code == 202
    assert gateway.post_hook(source, body, headers).status_code == 200
    assert gateway.post_hook(source, body, {**headers, "webhook-signature": "v1,AAAA"}).status_code == 401
    junk = b'{"nothing": "here"}'
    assert gateway.post_hook(source, junk, source_headers(source, junk)).status_code == 400
    assert gateway.client.post("/hooks/src_nope", content=body).status_code == 404

    text, samples = scrape(gateway)
    webhooks = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "callgate_webhooks_total" and dict(labels)["vendor"] == "graph8"
    }
    assert webhooks == {"stored": 1, "duplicate": 1, "rejected": 1, "quarantined": 1}
    assert samples[("callgate_webhooks_total", (("outcome", "unknown_source"), ("vendor", "unknown")))] == 1
    assert samples[("callgate_ingest_seconds_count", (("vendor", "graph8"),))] == 4
    assert samples[("callgate_writer_batch_jobs_count", ())] >= 2  # the event, the quarantine
    assert grew("callgate_outbox_pending", (("kind", "subscription"),)) >= 1
    assert samples[("callgate_outbox_oldest_pending_seconds", (("kind", "subscription"),))] >= 0
    assert grew("callgate_outbox_pending", (("kind", "crm"),)) == 0
    assert grew("callgate_quarantine_open") == 1
    assert grew("callgate_endpoints_disabled") == 0
    for private in (gateway.tenant_id, source["id"], source["secret"], gateway.api_key, "127.0.0.1"):
        assert private not in text


def test_metrics_are_for_operators(gateway: Gateway) -> None:
    assert gateway.client.get("/metrics").status_code == 401
    assert gateway.client.get("/metrics", headers=gateway.headers).status_code == 403


def test_delivery_attempts_are_counted_by_kind_and_outcome(db_url: str) -> None:
    import time

    from tests.outbound.receiver import receiver

    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"])
    with receiver() as endpoint:
        running = start_gateway(settings)
        gateway = next(running)
        try:
            response = gateway.client.post(
                "/v1/subscriptions", json={"url": endpoint.url}, headers=gateway.headers
            )
            assert response.status_code == 201
            source = gateway.create_source("graph8")
            body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
            assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 202
            endpoint.wait_for(1)
            key = ("callgate_delivery_attempts_total", (("kind", "subscription"), ("outcome", "succeeded")))
            deadline = time.monotonic() + 10  # the attempt is counted once its result is committed
            while scrape(gateway)[1].get(key, 0) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert scrape(gateway)[1][key] == 1
        finally:
            running.close()
