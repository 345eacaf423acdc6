"""Real workflows through the engine and LiteLLM's HTTP path, against a local OpenAI server.

Nothing here can reach a paid API: provider keys are removed from the environment (see
conftest.py) and every node points at the scripted server on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import cli
from openai_server import OpenAIServer, Reply

from core import load_workflow, run_workflow
from core.errors import ProviderConfigError
from core.telemetry import get_store

# gpt-4o-mini in LiteLLM's bundled price map: USD per token.
INPUT_PRICE = 0.15 / 1e6
OUTPUT_PRICE = 0.60 / 1e6

NODE_COLUMNS = (
    "node",
    "node_type",
    "provider",
    "model",
    "status",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_hit",
    "saved_cost_usd",
    "error",
)
RUN_COLUMNS = ("status", "input_tokens", "output_tokens", "cost_usd", "simulated", "error")


def gpt4o_mini_cost(input_tokens: int, output_tokens: int) -> float:
    return input_tokens * INPUT_PRICE + output_tokens * OUTPUT_PRICE


def workflow_text(
    server: OpenAIServer,
    nodes: str,
    *,
    retries: int = 0,
    timeout: float = 10,
    model: str = "gpt-4o-mini",
    extra: str = "",
) -> str:
    """A workflow whose default model is `model` on the test server; `nodes` is YAML."""
    return f"""
workflow:
  name: http_test
  retries: {retries}
  timeout: {timeout}
  llm: {{provider: openai, model: {model}, api_base: "{server.base_url}"}}
inputs:
  topic: {{type: string, required: true}}
nodes:
{nodes}
{extra}
"""


ONE_NODE = """
  - name: write
    prompt: "Write about {inputs.topic}"
"""


def run(text: str, home: Path, **options: Any):
    return run_workflow(load_workflow(text), {"topic": "solar"}, home=home, **options)


def node_rows(home: Path, run_id: str) -> dict[str, dict[str, Any]]:
    sql = f"SELECT {', '.join(NODE_COLUMNS)} FROM node_runs WHERE run_id = ?"
    rows = get_store(home).query(sql, [run_id])
    return {row[0]: dict(zip(NODE_COLUMNS, row, strict=True)) for row in rows}


def stored_run(home: Path, run_id: str) -> dict[str, Any]:
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?"
    rows = get_store(home).query(sql, [run_id])
    assert len(rows) == 1, rows
    return dict(zip(RUN_COLUMNS, rows[0], strict=True))


# ------------------------------------------------------------------------------ success


def test_success_records_output_tokens_and_cost(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.ok("Three facts.", prompt_tokens=1000, completion_tokens=500))
    nodes = """
  - name: outline
    system: You are concise.
    prompt: "List facts about {inputs.topic}"
    llm: {temperature: 0.2, max_output_tokens: 300}
  - name: draft
    prompt: "Expand: {outline}"
"""
    result = run(workflow_text(openai_server, nodes), home)

    assert result.status == "success", result.error
    assert result.outputs == {"draft": "echo: Expand: Three facts."}
    outline, draft = result.nodes["outline"], result.nodes["draft"]
    assert (outline.status, outline.attempts, outline.cache_hit) == ("success", 1, False)
    assert (outline.input_tokens, outline.output_tokens) == (1000, 500)
    assert outline.cost_usd == pytest.approx(gpt4o_mini_cost(1000, 500))
    assert outline.cost_usd == pytest.approx(0.00045)
    assert (draft.input_tokens, draft.output_tokens) == (10, 5)  # the echo reply's usage
    assert (result.input_tokens, result.output_tokens) == (1010, 505)
    assert result.cost_usd == pytest.approx(gpt4o_mini_cost(1010, 505))
    assert result.unpriced_calls == 0
    assert result.simulated is False

    first, second = openai_server.requests
    assert first.path == "/v1/chat/completions"
    assert first.json["model"] == "gpt-4o-mini"
    assert first.messages == [
        {"role": "system", "content": "You are concise."},
        {"role": "user", "content": "List facts about solar"},
    ]
    assert first.json["max_tokens"] == 300
    assert first.json["temperature"] == 0.2
    assert "response_format" not in first.json
    assert second.messages == [{"role": "user", "content": "Expand: Three facts."}]

    rows = node_rows(home, result.run_id)
    assert set(rows) == {"outline", "draft"}
    row = rows["outline"]
    assert (row["node_type"], row["provider"], row["model"]) == ("llm", "openai", "gpt-4o-mini")
    assert (row["status"], row["attempts"], row["cache_hit"], row["error"]) == (
        "success",
        1,
        False,
        None,
    )
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 500)
    assert row["cost_usd"] == pytest.approx(0.00045)
    summary = stored_run(home, result.run_id)
    assert summary["status"] == "success"
    assert (summary["input_tokens"], summary["output_tokens"]) == (1010, 505)
    assert summary["cost_usd"] == pytest.approx(result.cost_usd)
    assert (summary["simulated"], summary["error"]) == (False, None)


# ------------------------------------------------------------------------------ keys


def test_api_base_without_key_env_sends_a_placeholder_not_the_real_key(
    openai_server: OpenAIServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key-must-not-leak")
    result = run(workflow_text(openai_server, ONE_NODE), home)

    assert result.status == "success", result.error
    authorization = openai_server.requests[0].headers["authorization"]
    assert authorization.startswith("Bearer ")
    assert len(authorization) > len("Bearer ")
    assert "sk-real-key-must-not-leak" not in authorization


def test_api_key_env_is_sent_as_the_bearer_token(
    openai_server: OpenAIServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_VAR", "sk-test-123")
    monkeypatch.setenv("CONFIGURABLE_AGENTS_KEY_VARIABLES", "MY_VAR")
    nodes = ONE_NODE + "    llm: {api_key_env: MY_VAR}\n"
    result = run(workflow_text(openai_server, nodes), home)

    assert result.status == "success", result.error
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-test-123"


def test_unset_api_key_env_is_a_clear_error_before_any_call(
    openai_server: OpenAIServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_VAR", raising=False)
    monkeypatch.setenv("CONFIGURABLE_AGENTS_KEY_VARIABLES", "MY_VAR")
    nodes = ONE_NODE + "    llm: {api_key_env: MY_VAR}\n"
    with pytest.raises(ProviderConfigError) as caught:
        run(workflow_text(openai_server, nodes), home)
    assert "MY_VAR" in str(caught.value)
    assert "--simulate" in str(caught.value)
    assert openai_server.requests == []


def test_missing_provider_key_fails_before_any_node_runs(
    openai_server: OpenAIServer, home: Path
) -> None:
    # The first node could run (it points at the server), but the second needs
    # OPENAI_API_KEY: the run must refuse up front, not after spending on the first.
    text = f"""
workflow: {{name: missing_key}}
inputs: {{topic: string}}
nodes:
  - name: local
    prompt: "About {{inputs.topic}}"
    llm: {{provider: openai, model: gpt-4o-mini, api_base: "{openai_server.base_url}"}}
  - name: remote
    prompt: "More about {{local}}"
    llm: {{provider: openai, model: gpt-4o-mini}}
"""
    with pytest.raises(ProviderConfigError) as caught:
        run(text, home)
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message
    assert "--simulate" in message
    assert openai_server.requests == []


# ------------------------------------------------------------------------------ retries


def test_429_then_success_is_retried(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.error(429, retry_after=0), Reply.ok("made it"))
    result = run(workflow_text(openai_server, ONE_NODE, retries=2), home)

    assert result.status == "success", result.error
    node = result.nodes["write"]
    assert (node.status, node.attempts, node.output) == ("success", 2, "made it")
    assert (node.input_tokens, node.output_tokens) == (10, 5)
    first, second = openai_server.requests
    assert first.json == second.json  # the same call, sent again
    assert node_rows(home, result.run_id)["write"]["attempts"] == 2


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_exhausts_retries_and_fails_the_run(
    openai_server: OpenAIServer, home: Path, status: int
) -> None:
    openai_server.script(Reply.ok("Three facts."), then=Reply.error(status))
    nodes = """
  - name: outline
    prompt: "List facts about {inputs.topic}"
  - name: draft
    prompt: "Expand: {outline}"
  - name: polish
    prompt: "Polish: {draft}"
"""
    result = run(workflow_text(openai_server, nodes, retries=1), home)

    assert result.status == "failed"
    draft = result.nodes["draft"]
    assert (draft.status, draft.attempts) == ("failed", 2)
    assert str(status) in draft.error
    assert "Traceback" not in draft.error
    assert result.nodes["outline"].status == "success"
    assert "polish" not in result.nodes  # nothing starts after a failure
    assert result.outputs == {}
    assert "draft" in result.error
    assert len(openai_server.requests) == 3  # outline once, draft twice
    # The failed attempts were not billed; the finished node was.
    assert result.cost_usd == pytest.approx(gpt4o_mini_cost(10, 5))

    rows = node_rows(home, result.run_id)
    assert set(rows) == {"outline", "draft"}
    assert rows["outline"]["status"] == "success"
    assert (rows["draft"]["status"], rows["draft"]["attempts"]) == ("failed", 2)
    assert str(status) in rows["draft"]["error"]
    summary = stored_run(home, result.run_id)
    assert summary["status"] == "failed"
    assert "draft" in summary["error"]


def test_timeout_marks_the_node_timed_out(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.ok("too late", delay=3))
    result = run(workflow_text(openai_server, ONE_NODE, retries=0, timeout=1), home)

    assert result.status == "failed"
    node = result.nodes["write"]
    assert (node.status, node.attempts) == ("timeout", 1)
    assert "timed out" in node.error
    assert len(openai_server.requests) == 1
    row = node_rows(home, result.run_id)["write"]
    assert (row["status"], row["attempts"]) == ("timeout", 1)
    assert stored_run(home, result.run_id)["status"] == "failed"


# ------------------------------------------------------------------------------ bad replies


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply.raw("this is not json"), id="not-json"),
        pytest.param(Reply.raw('{"unexpected": true}'), id="no-choices"),
        pytest.param(Reply.raw("<html>bad gateway</html>", content_type="text/html"), id="html"),
    ],
)
def test_malformed_body_fails_the_node_with_a_clear_error(
    openai_server: OpenAIServer, home: Path, reply: Reply
) -> None:
    openai_server.script(then=reply)
    result = run(workflow_text(openai_server, ONE_NODE, retries=1), home)

    assert result.status == "failed"
    node = result.nodes["write"]
    assert node.status == "failed"
    assert "malformed" in node.error
    assert "HTTP 500" not in node.error  # the server answered 200
    assert "Traceback" not in node.error
    # Asking again would most likely get the same body: not retried.
    assert node.attempts == 1
    assert len(openai_server.requests) == 1
    row = node_rows(home, result.run_id)["write"]
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "malformed" in row["error"]


# ------------------------------------------------------------------------------ json mode

JSON_NODES = """
  - name: rate
    system: You are a critic.
    prompt: "Rate {inputs.topic}"
    output: json
    schema: {title: string, score: integer}
  - name: headline
    prompt: "Headline: {rate.title} ({rate.score}/10)"
"""


def test_json_mode_request_and_parsed_output(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.ok('{"title": "Solar", "score": 7}'))
    text = workflow_text(openai_server, JSON_NODES, extra="outputs: [rate, headline]")
    result = run(text, home)

    assert result.status == "success", result.error
    assert result.outputs["rate"] == {"title": "Solar", "score": 7}
    assert result.outputs["headline"] == "echo: Headline: Solar (7/10)"

    request = openai_server.requests[0]
    assert request.json["response_format"] == {"type": "json_object"}
    system = request.messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a critic.")
    assert "JSON" in system["content"]
    assert "title" in system["content"]
    assert "score" in system["content"]
    assert request.messages[1] == {"role": "user", "content": "Rate solar"}
    assert "response_format" not in openai_server.requests[1].json  # headline is a text node


def test_json_mode_accepts_a_fenced_reply(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.ok('```json\n{"title": "Solar", "score": 7}\n```'))
    result = run(workflow_text(openai_server, JSON_NODES), home)

    assert result.status == "success", result.error
    assert result.outputs == {"headline": "echo: Headline: Solar (7/10)"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Sure! {title: Solar", "not valid JSON"),
        ('{"title": "Solar"}', "missing field 'score'"),
    ],
)
def test_json_mode_rejects_a_bad_reply(
    openai_server: OpenAIServer, home: Path, content: str, expected: str
) -> None:
    openai_server.script(Reply.ok(content, prompt_tokens=100, completion_tokens=20))
    result = run(workflow_text(openai_server, JSON_NODES), home)

    assert result.status == "failed"
    node = result.nodes["rate"]
    assert node.status == "failed"
    assert expected in node.error
    assert "headline" not in result.nodes
    # The call was made and paid for even though its reply was unusable.
    assert (node.input_tokens, node.output_tokens) == (100, 20)
    assert node.cost_usd == pytest.approx(gpt4o_mini_cost(100, 20))
    row = node_rows(home, result.run_id)["rate"]
    assert row["status"] == "failed"
    assert expected in row["error"]
    assert row["cost_usd"] == pytest.approx(gpt4o_mini_cost(100, 20))


# ------------------------------------------------------------------------------ pricing


def test_unknown_model_price_is_recorded_as_unknown(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("tuned", prompt_tokens=1000, completion_tokens=500))
    result = run(workflow_text(openai_server, ONE_NODE, model="my-finetune"), home)

    assert result.status == "success", result.error
    assert openai_server.requests[0].json["model"] == "my-finetune"
    node = result.nodes["write"]
    assert (node.input_tokens, node.output_tokens) == (1000, 500)
    assert node.cost_usd is None
    assert result.cost_usd is None
    assert result.unpriced_calls == 1
    assert any("my-finetune" in warning for warning in result.warnings)
    assert node_rows(home, result.run_id)["write"]["cost_usd"] is None


def test_unknown_model_price_is_null_in_the_runs_table(
    openai_server: OpenAIServer, home: Path
) -> None:
    result = run(workflow_text(openai_server, ONE_NODE, model="my-finetune"), home)

    assert result.cost_usd is None
    assert stored_run(home, result.run_id)["cost_usd"] is None


def test_pricing_section_prices_an_unknown_model(openai_server: OpenAIServer, home: Path) -> None:
    openai_server.script(Reply.ok("tuned", prompt_tokens=1000, completion_tokens=500))
    pricing = "pricing:\n  my-finetune: {input_per_million: 1, output_per_million: 2}"
    text = workflow_text(openai_server, ONE_NODE, model="my-finetune", extra=pricing)
    result = run(text, home)

    assert result.status == "success", result.error
    expected = 1000 * 1 / 1e6 + 500 * 2 / 1e6
    assert result.nodes["write"].cost_usd == pytest.approx(expected)
    assert result.cost_usd == pytest.approx(0.002)
    assert result.unpriced_calls == 0
    assert node_rows(home, result.run_id)["write"]["cost_usd"] == pytest.approx(0.002)


# ------------------------------------------------------------------------------ cache


def test_cache_hit_makes_no_request_and_records_the_saving(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("cached answer", prompt_tokens=1000, completion_tokens=500))
    nodes = ONE_NODE + "    cache: {enabled: true}\n"
    text = workflow_text(openai_server, nodes)

    first = run(text, home)
    assert first.status == "success", first.error
    assert first.nodes["write"].cache_hit is False
    assert first.cost_usd == pytest.approx(0.00045)
    assert len(openai_server.requests) == 1

    second = run(text, home)
    assert second.status == "success", second.error
    assert len(openai_server.requests) == 1  # served from the cache
    node = second.nodes["write"]
    assert node.cache_hit is True
    assert node.output == "cached answer"
    assert node.cost_usd == 0
    assert node.saved_cost_usd == pytest.approx(first.cost_usd)
    assert second.cost_usd == 0
    assert second.unpriced_calls == 0
    row = node_rows(home, second.run_id)["write"]
    assert (row["cache_hit"], row["cost_usd"]) == (True, 0)
    assert row["saved_cost_usd"] == pytest.approx(0.00045)

    third = run(text, home, use_cache=False)
    assert len(openai_server.requests) == 2  # the cache was bypassed
    assert third.nodes["write"].cache_hit is False
    assert third.outputs == {"write": "echo: Write about solar"}

    other = run_workflow(load_workflow(text), {"topic": "wind"}, home=home)
    assert len(openai_server.requests) == 3  # a different prompt is a miss
    assert other.nodes["write"].cache_hit is False


# ------------------------------------------------------------------------------ CLI


def test_cli_run_json_success(openai_server: OpenAIServer, home: Path, tmp_path: Path) -> None:
    openai_server.script(Reply.ok("Solar is bright.", prompt_tokens=1000, completion_tokens=500))
    path = tmp_path / "wf.yaml"
    path.write_text(workflow_text(openai_server, ONE_NODE), encoding="utf-8")

    done = cli("run", str(path), "--json", "--input", "topic=solar", home=home)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "success"
    assert document["outputs"] == {"write": "Solar is bright."}
    assert (document["input_tokens"], document["output_tokens"]) == (1000, 500)
    assert document["cost_usd"] == pytest.approx(0.00045)
    assert openai_server.requests[0].messages == [{"role": "user", "content": "Write about solar"}]
    assert stored_run(home, document["run_id"])["status"] == "success"
    assert node_rows(home, document["run_id"])["write"]["input_tokens"] == 1000


def test_cli_run_exits_1_when_a_node_fails(
    openai_server: OpenAIServer, home: Path, tmp_path: Path
) -> None:
    openai_server.script(then=Reply.error(500))
    path = tmp_path / "wf.yaml"
    path.write_text(workflow_text(openai_server, ONE_NODE, retries=0), encoding="utf-8")

    done = cli("run", str(path), "--json", "--input", "topic=solar", home=home)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "failed"
    assert document["outputs"] == {}
    assert "500" in document["nodes"]["write"]["error"]


def test_cli_run_exits_2_naming_the_missing_key(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "workflow: {name: needs_key}\nnodes:\n  - name: a\n    prompt: hi\n", encoding="utf-8"
    )

    done = cli("run", str(path), "--json", home=home)

    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr
    assert "--simulate" in done.stderr
    assert "Traceback" not in done.stderr
