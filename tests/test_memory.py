"""Persistent namespaced memory: across processes, TTL, isolation, concurrent writers, nodes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core import load_workflow, run_workflow
from core.cli import main
from core.engine.memory import MemoryStore

ROOT = Path(__file__).parent.parent


def _in_other_process(home: Path, code: str) -> str:
    script = (
        "from pathlib import Path\nfrom core.engine.memory import MemoryStore\n"
        f"store = MemoryStore(Path({str(home)!r}))\n{code}"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout.strip()


def test_values_persist_across_processes(home: Path) -> None:
    _in_other_process(home, "store.set('team', 'lead', {'name': 'Ada'})")
    assert MemoryStore(home).get("team", "lead") == {"name": "Ada"}
    MemoryStore(home).set("team", "size", 4)
    assert _in_other_process(home, "print(sorted(store.snapshot('team').items()))") == (
        "[('lead', {'name': 'Ada'}), ('size', 4)]"
    )


def test_entries_expire(home: Path) -> None:
    store = MemoryStore(home)
    store.set("ns", "short", "soon gone", ttl=0.3)
    store.set("ns", "long", "stays")
    assert store.snapshot("ns") == {"short": "soon gone", "long": "stays"}
    time.sleep(0.4)
    assert store.snapshot("ns") == {"long": "stays"}


def test_namespaces_are_isolated(home: Path) -> None:
    store = MemoryStore(home)
    store.set("alpha", "key", "a")
    store.set("beta", "key", "b")
    assert store.clear("alpha") == 1
    assert store.snapshot("alpha") == {}
    assert store.snapshot("beta") == {"key": "b"}
    assert store.namespaces() == ["alpha", "beta"]


def test_concurrent_writers_lose_nothing(home: Path) -> None:
    store = MemoryStore(home)

    def write(worker: int) -> None:
        for index in range(50):
            store.set("shared", f"w{worker}-{index}", index)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    others = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from pathlib import Path\nfrom core.engine.memory import MemoryStore\n"
                f"s = MemoryStore(Path({str(home)!r}))\n"
                f"for i in range(50): s.set('shared', 'p{p}-' + str(i), i)",
            ],
            cwd=ROOT,
        )
        for p in range(3)
    ]
    assert all(process.wait(timeout=60) == 0 for process in others)
    assert len(store.snapshot("shared")) == 4 * 50 + 3 * 50


MEMORY_FLOW = textwrap.dedent(
    """
    workflow:
      name: remember
      llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0, output_tokens: 8}}
    inputs: {topic: {type: string, required: true}}
    nodes:
      - name: draft
        prompt: "About {inputs.topic}; previously: {memory.draft}"
        memory: {enabled: true, namespace: notes}
      - name: tally
        type: code
        code: |
          memory["count"] = memory.get("count", 0) + 1
          memory.pop("scratch", None)
          result = {"count": memory["count"], "saw_draft": "draft" in memory}
        memory: {enabled: true, namespace: notes}
      - name: isolated
        type: code
        code: |
          result = sorted(memory)
        memory: {enabled: true, namespace: elsewhere}
    edges:
      - {from: draft, to: tally}
      - {from: draft, to: isolated}
    """
)


def test_nodes_read_and_write_memory_across_runs(home: Path) -> None:
    wf = load_workflow(MEMORY_FLOW)
    MemoryStore(home).set("notes", "scratch", "temporary")
    first = run_workflow(wf, {"topic": "tides"}, simulate=True, home=home)
    assert first.status == "success", first.error
    assert first.nodes["tally"].output == {"count": 1, "saw_draft": True}
    assert first.nodes["isolated"].output == []
    second = run_workflow(wf, {"topic": "waves"}, simulate=True, home=home)
    assert second.nodes["tally"].output["count"] == 2
    # the second draft's prompt quoted the first draft, read from memory
    assert "previously: [simulated gpt-4o-mini] About tides" in second.nodes["draft"].output
    stored = MemoryStore(home).snapshot("notes")
    assert stored["count"] == 2 and "scratch" not in stored
    assert stored["draft"] == second.nodes["draft"].output


def test_memory_cli(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    MemoryStore(home).set("notes", "greeting", "hello")
    MemoryStore(home).set("notes", "count", 3)
    assert main(["memory", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "notes: 2 keys",
        "  count = 3",
        "  greeting = hello",
    ]
    assert main(["memory", "get", "greeting", "--namespace", "notes"]) == 0
    assert capsys.readouterr().out.strip() == "hello"
    assert main(["memory", "get", "missing", "-n", "notes"]) == 1
    assert main(["memory", "clear", "-n", "notes"]) == 0
    assert capsys.readouterr().out.strip().endswith("cleared 2 keys from notes")
    assert main(["memory", "clear"]) == 2
    assert main(["memory", "list", "-n", "../etc"]) == 2
