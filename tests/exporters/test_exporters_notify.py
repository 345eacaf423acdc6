"""`check --notify URL`: a Slack-compatible message to each webhook when a target is violated,
nothing when all pass, and a webhook that fails never changes the gate's verdict."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from exporter_helpers import Receiver, closed_port_url
from helpers import NOW, cli, make_node, make_run, write_rows

GATE = "workflow:\n  name: gate\n  targets: {max_run_cost: 0.005, min_success_rate: 0.9}\n"
GATE += "nodes: [{name: a, prompt: hi}, {name: b, prompt: hi}, {name: c, prompt: hi}]\n"


@pytest.fixture
def gate(home: Path) -> Path:
    """20 runs of gate costing $0.004 each (2 failed), three even nodes; one version."""
    runs, nodes = [], []
    for i in range(20):
        at = NOW - timedelta(minutes=i + 1)
        status = "failed" if i < 2 else "success"
        runs.append(make_run(f"g{i}", at, 0.004, workflow="gate", status=status))
        nodes += [make_node(f"g{i}", n, at, workflow="gate", cost_usd=0.001) for n in "abc"]
    version = {"workflow_hash": "g1", "workflow": "gate", "source": GATE, "first_seen": NOW}
    write_rows(home, runs, nodes, [version])
    return home


def test_violations_are_posted_to_every_webhook(gate: Path, receiver: Receiver) -> None:
    first, second = f"{receiver.url}/services/T1/B1/one", f"{receiver.url}/hooks/two"

    done = cli(
        "check", "-w", "gate", "--max-run-cost", "0.003", "--notify", first, "--notify", second,
        home=gate,
    )  # fmt: skip

    assert done.returncode == 1  # the gate still fails
    assert receiver.paths == ["/services/T1/B1/one", "/hooks/two"]
    sent, again = receiver.json()
    assert sent == again
    assert sent["text"] == (
        "configurable-agents check of gate, last 7 days: 1 target violation (gate)"
    )
    header, section = sent["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": sent["text"]}}
    assert section == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*run_cost_p95* — workflow *gate*\n"
            "value $0.0040, threshold &lt;= $0.0030\nlimit from --max-run-cost",
        },
    }
    assert "http" not in sent["text"] + section["text"]["text"]  # no links in the summary
    assert done.stderr.splitlines() == [
        f"check: webhook {receiver.url}/services/…: delivered (HTTP 200)",
        f"check: webhook {receiver.url}/hooks/…: delivered (HTTP 200)",
    ]


def test_nothing_is_posted_when_every_target_passes(gate: Path, receiver: Receiver) -> None:
    done = cli("check", "-w", "gate", "--notify", f"{receiver.url}/hook", home=gate)

    assert done.returncode == 0, done.stdout
    assert receiver.bodies == []
    assert done.stderr == "check: no target violated, no webhook called\n"


def test_a_webhook_that_fails_is_reported_and_the_verdict_stands(
    gate: Path, receiver: Receiver
) -> None:
    dead = closed_port_url()

    done = cli(
        "check", "-w", "gate", "--min-success-rate", "0.95", "--notify", dead,
        "--notify", f"{receiver.url}/hook", home=gate,
    )  # fmt: skip

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("check: webhook http://127.0.0.1:")
    assert "not delivered after 3 attempts" in lines[0]
    assert "Connection refused" in lines[0]
    assert lines[1] == f"check: webhook {receiver.url}/hook: delivered (HTTP 200)"
    (sent,) = receiver.json()
    assert "*success_rate* — workflow *gate*" in sent["blocks"][1]["text"]["text"]
