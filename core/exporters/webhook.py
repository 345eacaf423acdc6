"""Target violations as a Slack-compatible webhook message, posted to one or more URLs.

The message is Slack's incoming-webhook JSON, `{"text": ..., "blocks": [...]}`: `text` is
the summary line (what notifications and clients without blocks show), then a header and
one section per violation with the metric, the figure, the threshold and the workflow.
Mattermost, Rocket.Chat and Discord's `/slack` webhooks take the same shape. Text is
escaped so nothing in a workflow name or a detail becomes a link or a mention.

Posting is an alert, never the job: each URL gets a timeout and a few retries (5xx, 429,
timeouts, refused connections), its outcome is returned, a failure is logged in one line,
and nothing raises to the caller. Webhook URLs are secrets (the path is the token), so
outcomes and logs show only the scheme, host and first path segment.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("core.exporters")

TIMEOUT = 5.0
RETRIES = 2
BACKOFF = 0.5  # seconds before the first retry, doubled each time
MAX_SECTIONS = 48  # Slack takes 50 blocks: the header, the sections, one "and N more"
MAX_SECTION_TEXT = 2900  # of Slack's 3000 characters per section
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Violation:
    """A metric that missed its target. Mirrors the check report's `Metric` (name, value,
    threshold, operator, unit, workflow, detail) so a FAIL converts field for field."""

    workflow: str | None  # None for metrics over all workflows (e.g. error rate)
    metric: str  # e.g. run_cost_p95, success_rate
    value: float | None
    threshold: float | None
    unit: str  # ratio | usd | ms, or any other unit name
    detail: str = ""
    operator: str = ""  # how value must compare with threshold to pass: '<', '<=', '>', '>='


@dataclass(frozen=True)
class Delivery:
    """What became of the message at one URL."""

    url: str  # redacted
    ok: bool
    status: int | None  # the last HTTP status, None when no answer came
    attempts: int
    error: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"webhook {self.url}: delivered (HTTP {self.status})"
        return f"webhook {self.url}: not delivered after {self.attempts} attempts: {self.error}"


def figure(value: float | None, unit: str) -> str:
    """A value as people read it in that unit."""
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{value:,g} {unit}".rstrip()


def message(violations: Sequence[Violation], title: str = "configurable-agents") -> dict[str, Any]:
    """The Slack message for `violations` (at least one)."""
    workflows = sorted({v.workflow for v in violations if v.workflow})
    noun = "violation" if len(violations) == 1 else "violations"
    summary = f"{title}: {len(violations)} target {noun}"
    if workflows:
        summary += f" ({', '.join(workflows)})"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary[:150]}}
    ]
    blocks += [_section(v) for v in violations[:MAX_SECTIONS]]
    if len(violations) > MAX_SECTIONS:
        more = len(violations) - MAX_SECTIONS
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {more} more"}]}
        )
    return {"text": _escape(summary), "blocks": blocks}


def _section(v: Violation) -> dict[str, Any]:
    limit = f"{v.operator} " if v.operator else ""
    text = (
        f"*{_escape(v.metric)}* — workflow *{_escape(v.workflow or 'all workflows')}*\n"
        f"value {_escape(figure(v.value, v.unit))}, "
        f"threshold {_escape(limit + figure(v.threshold, v.unit))}"
    )
    if v.detail:
        text += f"\n{_escape(v.detail)}"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}}


def _escape(text: str) -> str:
    """Slack's control characters: escaped, `<...>` cannot form a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def redact(url: str) -> str:
    """The part of a webhook URL safe to show: scheme, host and first path segment."""
    parts = urlsplit(url)
    first = parts.path.strip("/").split("/", 1)[0]
    shown = (
        f"{parts.scheme}://{parts.netloc}/{first}" if first else f"{parts.scheme}://{parts.netloc}"
    )
    return shown + ("/…" if parts.path.strip("/") != first or parts.query else "")


def post(
    payload: dict[str, Any],
    urls: Iterable[str],
    *,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    backoff: float = BACKOFF,
    log_failures: bool = True,
) -> list[Delivery]:
    """POSTs `payload` as JSON to each URL; one Delivery per URL, in order. Never raises.
    A caller that reports every Delivery itself (the CLI) passes `log_failures=False`."""
    body = json.dumps(payload).encode()
    deliveries = []
    for url in urls:
        delivery = _deliver(url, body, timeout, retries, backoff)
        if not delivery.ok and log_failures:
            log.warning("%s", delivery.line())
        deliveries.append(delivery)
    return deliveries


def send_violations(
    violations: Sequence[Violation],
    urls: Iterable[str],
    title: str = "configurable-agents",
    **options: Any,
) -> list[Delivery]:
    """Posts the message for `violations` to each URL; nothing is sent when there are none.
    `options` are `post`'s."""
    if not violations:
        return []
    return post(message(violations, title), urls, **options)


def _deliver(url: str, body: bytes, timeout: float, retries: int, backoff: float) -> Delivery:
    attempt = 0
    while True:
        attempt += 1
        try:
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Delivery(redact(url), True, response.status, attempt)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            retry = exc.code in RETRYABLE_STATUS
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            status, error = None, str(getattr(exc, "reason", exc)) or type(exc).__name__
            retry = True
        except Exception as exc:  # a malformed URL and the like: not worth retrying
            status, error, retry = None, repr(exc), False
        if not retry or attempt > retries:
            return Delivery(redact(url), False, status, attempt, error)
        time.sleep(backoff * 2 ** (attempt - 1))
