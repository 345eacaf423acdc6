"""Webhook alerts: the Slack-compatible message, and delivery to URLs that work or fail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from exporter_helpers import History, Receiver, closed_port_url

from core.exporters.webhook import (
    MAX_SECTIONS,
    Violation,
    message,
    post,
    redact,
    send_violations,
)

COST = Violation(
    workflow="research",
    metric="run_cost_p95",
    value=0.0123,
    threshold=0.01,
    unit="usd",
    detail="limit from targets.max_run_cost",
    operator="<=",
)
SUCCESS = Violation(
    workflow=None,
    metric="success_rate",
    value=0.9,
    threshold=0.95,
    unit="ratio",
    detail="9 of 10 runs succeeded",
    operator=">",
)


def test_message_has_a_summary_and_one_section_per_violation() -> None:
    sent = message([COST, SUCCESS])

    assert sent == {
        "text": "configurable-agents: 2 target violations (research)",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": "configurable-agents: 2 target violations (research)",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*run_cost_p95* — workflow *research*\n"
                    "value $0.0123, threshold &lt;= $0.0100\n"
                    "limit from targets.max_run_cost",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*success_rate* — workflow *all workflows*\n"
                    "value 90.0%, threshold &gt; 95.0%\n"
                    "9 of 10 runs succeeded",
                },
            },
        ],
    }


def test_nothing_in_a_violation_can_become_a_link_or_mention() -> None:
    sneaky = Violation("wf", "run_latency_p95", 12000, 10000, "ms", "<!channel> <http://x|y> & co")

    (section,) = message([sneaky])["blocks"][1:]

    assert section["text"]["text"] == (
        "*run_latency_p95* — workflow *wf*\n"
        "value 12,000 ms, threshold 10,000 ms\n"
        "&lt;!channel&gt; &lt;http://x|y&gt; &amp; co"
    )


def test_many_violations_stay_within_slacks_block_limit() -> None:
    many = [COST] * (MAX_SECTIONS + 2)

    blocks = message(many)["blocks"]

    assert len(blocks) == 50
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…and 2 more"}],
    }


def test_the_message_is_posted_as_json(receiver: Receiver) -> None:
    (delivery,) = send_violations([COST], [f"{receiver.url}/services/T1/B2/secret"])

    assert (delivery.ok, delivery.status, delivery.attempts, delivery.error) == (True, 200, 1, None)
    assert delivery.url == f"{receiver.url}/services/…"
    assert receiver.json() == [message([COST])]
    assert receiver.headers[0]["content-type"] == "application/json"


def test_failing_urls_are_reported_in_one_line_each_and_never_raise(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    refused = closed_port_url()
    good_url = f"{receiver.url}/hook"

    with caplog.at_level(logging.WARNING):
        server_error, unreachable = post(message([COST]), [good_url, refused], backoff=0.01)

    assert (server_error.ok, server_error.status, server_error.attempts) == (False, 500, 3)
    assert server_error.error == "HTTP 500 Internal Server Error"
    assert len(receiver.bodies) == 3  # the first try and two retries
    assert (unreachable.ok, unreachable.status, unreachable.attempts) == (False, None, 3)
    assert "Connection refused" in unreachable.error
    lines = [r.getMessage() for r in caplog.records if r.name == "core.exporters"]
    assert lines == [server_error.line(), unreachable.line()]
    assert lines[0] == (
        f"webhook {receiver.url}/hook: not delivered after 3 attempts: "
        "HTTP 500 Internal Server Error"
    )


def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.status = 404

    (delivery,) = post({"text": "x"}, [f"{receiver.url}/gone"], backoff=0.01)

    assert (delivery.ok, delivery.status, delivery.attempts) == (False, 404, 1)
    assert len(receiver.bodies) == 1


def test_no_violations_send_nothing(receiver: Receiver) -> None:
    assert send_violations([], [receiver.url]) == []
    assert receiver.bodies == []


def test_redaction_keeps_the_secret_part_of_a_url_out() -> None:
    assert (
        redact("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com/services/…"
    )
    assert redact("https://example.com/hook?token=abc") == "https://example.com/hook/…"
    assert redact("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_a_failed_check_metric_converts_field_for_field(history: History, home: Path) -> None:
    from core.analytics.check import FAIL, check

    report = check(home, workflow="export_fanout", max_run_cost=1e-9, max_run_latency_ms=1e6)
    metric = next(m for m in report.metrics if m.name == "run_cost_p95")
    assert metric.status == FAIL

    violation = Violation(
        metric.workflow,
        metric.name,
        metric.value,
        metric.threshold,
        metric.unit,
        metric.detail,
        metric.operator,
    )

    (section,) = message([violation])["blocks"][1:]
    assert section["text"]["text"] == (
        "*run_cost_p95* — workflow *export_fanout*\n"
        f"value ${metric.value:.4f}, threshold &lt;= $0.0000\n"
        "limit from --max-run-cost"
    )
