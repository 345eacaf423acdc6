"""Shared pieces of the exporter tests: workflows, waiting, and the servers' handles."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FANOUT = """\
workflow:
  name: export_fanout
  llm: {provider: openai, model: gpt-4o-mini, max_output_tokens: 50, simulate: {latency_ms: 20}}
inputs:
  topic: {type: string, required: true}
nodes:
  - name: plan
    prompt: "Plan {inputs.topic}"
  - name: econ
    prompt: "Economics of {plan}"
    llm: {provider: google, model: gemini-2.5-flash}
  - name: risks
    prompt: "Risks of {plan}"
    llm: {provider: anthropic, model: claude-haiku-4-5}
  - name: mystery
    prompt: "Something about {plan}"
    llm: {model: my-unknown-model}
  - name: count
    type: code
    code: |
      result = {"n": len(nodes["econ"])}
  - name: merge
    prompt: "{econ} {risks} {mystery} {count.n}"
edges:
  - {from: plan, to: econ}
  - {from: plan, to: risks}
  - {from: plan, to: mystery}
  - {from: econ, to: count}
  - {from: count, to: merge}
  - {from: risks, to: merge}
  - {from: mystery, to: merge}
"""
FANOUT_PARENTS = {
    "plan": (),
    "econ": ("plan",),
    "risks": ("plan",),
    "mystery": ("plan",),
    "count": ("econ",),
    "merge": ("count", "risks", "mystery"),
}
FAILING = """\
workflow:
  name: export_fails
  retries: 0
  llm:
    provider: openai
    model: gpt-4o-mini
    max_output_tokens: 20
    simulate: {latency_ms: 5, error_rate: 1}
nodes:
  - name: only
    prompt: "hello"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """A URL on this machine where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1/traces"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls `check` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen

    @property
    def otlp(self) -> str:
        return f"{self.url}/v1/traces"

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.url)

    def new_experiment(self, name: str) -> str:
        return self.client().create_experiment(f"{name}-{time.time_ns()}")


@dataclass
class History:
    """Runs recorded in a data folder by the simulated provider."""

    home: Path
    fanout: str  # run ids
    failed: str
    workflow_file: Path


@dataclass
class Receiver:
    """A local HTTP server that records POSTs and answers with `status`, after `hold` is
    set when there is one (a backend that hangs)."""

    status: int = 200
    hold: threading.Event | None = None  # when set, requests wait until it is set
    bodies: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def json(self) -> list[Any]:
        return [json.loads(body) for body in self.bodies]
