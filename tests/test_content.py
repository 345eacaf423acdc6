"""Stored prompts and responses (docs/telemetry.md, "Content"): what a run stores and when,
each text once, a long text whole through the spool, and prune with its retention setting.

Runs go through the real engine into a real DuckDB file; real-model runs call the scripted
OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import cli
from openai_server import OpenAIServer, Reply

from core import load_workflow, run_workflow
from core.telemetry import TelemetryStore, get_store
from core.telemetry.content import (
    RETENTION_VARIABLE,
    content_events,
    content_hash,
    read_node_content,
)

SIMULATED = """
workflow:
  name: stored
  llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0}}
  SETTINGS
inputs:
  topic: {type: string, required: true}
nodes:
  - name: facts
    system: You are concise.
    prompt: "List facts about {inputs.topic}."
  - name: summary
    prompt: "Summarise: {facts}"
"""


def _simulated(settings: str = "") -> str:
    return SIMULATED.replace("SETTINGS", settings)


def _real(server: OpenAIServer, settings: str = "") -> str:
    return f"""
workflow:
  name: real_stored
  retries: 0
  llm: {{provider: openai, model: gpt-4o-mini, api_base: "{server.base_url}"}}
  {settings}
inputs:
  topic: {{type: string, required: true}}
nodes:
  - name: write
    prompt: "Write about {{inputs.topic}}"
"""


def _contents(home: Path, run_id: str):
    with get_store(home).connect() as con:
        return read_node_content(con, run_id)


def _count(home: Path, table: str) -> int:
    return get_store(home).query(f"SELECT count(*) FROM {table}")[0][0]


def test_a_simulated_run_stores_what_each_node_sent_and_received(home: Path) -> None:
    result = run_workflow(load_workflow(_simulated()), {"topic": "tides"}, home=home)
    stored = _contents(home, result.run_id)
    assert set(stored) == {"facts", "summary"}
    facts = stored["facts"]
    assert facts.prompt == "List facts about tides."
    assert facts.system == "You are concise."
    assert facts.response == result.nodes["facts"].output
    assert stored["summary"].prompt == f"Summarise: {result.nodes['facts'].output}"
    assert stored["summary"].system is None
    (request_hash,) = get_store(home).query(
        "SELECT request_hash FROM node_runs WHERE run_id = ? AND node = 'facts'", [result.run_id]
    )[0]
    assert facts.cache_key.startswith(request_hash) and len(facts.cache_key) > len(request_hash)


def test_the_same_texts_are_stored_once(home: Path) -> None:
    workflow = load_workflow(_simulated())
    run_workflow(workflow, {"topic": "tides"}, home=home)
    texts = _count(home, "content")
    assert texts == 5  # two prompts, one system text, two responses
    again = run_workflow(workflow, {"topic": "tides"}, home=home)
    assert _count(home, "content") == texts
    assert _count(home, "node_content") == 4
    assert _contents(home, again.run_id)["facts"].prompt == "List facts about tides."


def test_store_content_false_stores_nothing_even_when_simulated(home: Path) -> None:
    workflow = load_workflow(_simulated("telemetry: {store_content: false}"))
    result = run_workflow(workflow, {"topic": "tides"}, home=home)
    assert result.ok
    assert _count(home, "node_content") == 0 and _count(home, "content") == 0


def test_real_runs_store_nothing_unless_the_workflow_asks(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("Solar is bright."), Reply.ok("Solar is brighter."))
    plain = run_workflow(load_workflow(_real(openai_server)), {"topic": "solar"}, home=home)
    assert plain.ok and not plain.simulated
    assert _count(home, "node_content") == 0

    asked = load_workflow(_real(openai_server, "telemetry: {store_content: true}"))
    stored = run_workflow(asked, {"topic": "solar"}, home=home)
    assert stored.ok
    write = _contents(home, stored.run_id)["write"]
    assert write.prompt == "Write about solar"
    assert write.response == "Solar is brighter."


def test_a_long_text_arrives_whole_through_the_spool(home: Path) -> None:
    rng = random.Random(3)  # incompressible: its base64 is far beyond a spool field's limit
    text = "".join(rng.choices(string.ascii_letters + string.digits, k=200_000))
    store = get_store(home)
    now = datetime.now(UTC)
    for event, row in content_events("r1", "big", now, {"prompt": text}, "key", now):
        store.record(event, row)
    store.flush()
    assert _contents(home, "r1")["big"].prompt == text


def _record_content(home: Path, run_id: str, started: datetime, prompt: str) -> None:
    store = get_store(home)
    for event, row in content_events(run_id, "n", started, {"prompt": prompt}, "k", started):
        store.record(event, row)
    store.flush()


def test_prune_deletes_old_content_and_keeps_runs(home: Path) -> None:
    result = run_workflow(load_workflow(_simulated()), {"topic": "tides"}, home=home)
    old = datetime.now(UTC) - timedelta(days=10)
    _record_content(home, "old-run", old, "an old prompt")
    _record_content(home, "old-run-2", old, "List facts about tides.")  # shared with a new run
    runs_before = _count(home, "runs")

    done = cli("prune", "--days", "3", home=home)
    assert done.returncode == 0, done.stderr
    assert "2 node calls, 1 stored text" in done.stdout
    hashes = {row[0] for row in get_store(home).query("SELECT content_hash FROM content")}
    assert content_hash("an old prompt") not in hashes
    assert content_hash("List facts about tides.") in hashes
    assert _contents(home, result.run_id)["facts"].prompt == "List facts about tides."
    assert _count(home, "runs") == runs_before


def test_prune_refuses_a_bad_number_of_days(home: Path) -> None:
    for days in ("0", "seven"):
        refused = cli("prune", "--days", days, home=home)
        assert refused.returncode == 2
        assert "argument --days: expected a whole number of days" in refused.stderr
        assert "Traceback" not in refused.stderr
    unset = cli("prune", home=home)
    assert unset.returncode == 2 and RETENTION_VARIABLE in unset.stderr
    bad = cli("prune", home=home, env={RETENTION_VARIABLE: "soon"})
    assert bad.returncode == 2 and f"{RETENTION_VARIABLE}: expected" in bad.stderr


def test_the_retention_setting_prunes_once_a_process_writes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record_content(home, "old-run", datetime.now(UTC) - timedelta(days=40), "an old prompt")
    monkeypatch.setenv(RETENTION_VARIABLE, "30")
    process = TelemetryStore(home)  # another process's store: its first load prunes
    now = datetime.now(UTC)
    for event, row in content_events("new-run", "n", now, {"prompt": "new"}, "k", now):
        process.record(event, row)
    assert process.flush()
    runs = {row[0] for row in process.query("SELECT DISTINCT run_id FROM node_content")}
    assert runs == {"new-run"}
    assert content_hash("an old prompt") not in {
        row[0] for row in process.query("SELECT content_hash FROM content")
    }


def test_a_code_node_stores_its_result_as_its_response(home: Path) -> None:
    text = _simulated() + (
        "  - name: words\n"
        "    type: code\n"
        '    code: \'result = {"words": len(nodes["summary"].split())}\'\n'
    )
    result = run_workflow(load_workflow(text), {"topic": "tides"}, home=home)
    assert result.ok, result.error
    words = _contents(home, result.run_id)["words"]
    assert json.loads(words.response) == result.nodes["words"].output
    assert words.prompt is None and words.cache_key is None
