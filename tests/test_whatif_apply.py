"""A what-if written into the workflow file: a targeted edit that keeps comments and order,
shown as a diff, saved through the Editor's rules (in place, or as a renamed copy of an
example), or run once unsaved; provider names as the file writes them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import D1, litellm_cost, make_node, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core.app import background
from core.catalog.model_names import workflow_provider
from core.errors import WorkflowError
from core.workflow import load_workflow, parse_workflow
from core.workflow.model_edit import set_models, set_name

ROOT = Path(__file__).resolve().parents[1]
ESTIMATE = str(ROOT / "pages" / "2_Estimate.py")
WORKFLOW = """\
# Team digest: keep this header.
workflow:
  name: digest   # the history's name
  llm: {provider: openai, model: gpt-4o-mini, simulate: {latency_ms: 0}}

nodes:
  - name: plan          # inherits the default model
    prompt: "Plan {inputs.topic}."
  - prompt: |
      Facts for {plan}.
    name: facts
    llm:
      model: gpt-4o     # block mapping, model only
      temperature: 0.1
  - name: merge
    llm: {provider: anthropic, model: "claude-haiku-4-5"}  # flow mapping
    prompt: "Merge {facts}"
inputs:
  topic: {type: string, default: tides}
"""


def test_edits_keep_comments_order_and_the_rest_of_the_file() -> None:
    workflow = parse_workflow(WORKFLOW, "digest.yaml")
    moves = {
        "plan": ("google", "gemini-2.0-flash"),
        "facts": ("anthropic", "claude-haiku-4-5"),
        "merge": ("openai", "gpt-4.1-mini"),
    }
    text = set_models(workflow, moves)
    edited = parse_workflow(text, "digest.yaml")
    for node in edited.spec.nodes:
        llm = edited.llm_for(node)
        assert (llm.provider, llm.model) == moves[node.name]
    assert edited.llm_for(edited.spec.nodes[1]).temperature == 0.1
    before, after = WORKFLOW.splitlines(), text.splitlines()
    assert after[0] == "# Team digest: keep this header." and len(after) == len(before) + 2
    assert "  - name: plan          # inherits the default model" in after
    assert "    llm: {provider: google, model: gemini-2.0-flash}" in after
    assert "      model: claude-haiku-4-5     # block mapping, model only" in after
    assert "      provider: anthropic" in after
    assert "    llm: {provider: openai, model: gpt-4.1-mini}  # flow mapping" in after
    assert (
        set_name(text, "digest_copy").splitlines()[2]
        == "  name: digest_copy   # the history's name"
    )


@pytest.mark.parametrize(
    ("moves", "message"),
    [
        ({"nowhere": ("openai", "gpt-4o")}, "no node named 'nowhere'"),
        ({"plan": ("openai", "gpt 4o: {bad}")}, ""),
    ],
)
def test_a_bad_change_is_refused_not_written(moves: dict, message: str) -> None:
    workflow = parse_workflow(WORKFLOW, "digest.yaml")
    if not message:  # an odd name is quoted, so the file still loads and says what it holds
        text = set_models(workflow, moves)
        assert (
            parse_workflow(text).llm_for(parse_workflow(text).spec.nodes[0]).model
            == "gpt 4o: {bad}"
        )
        return
    with pytest.raises(WorkflowError, match=message):
        set_models(workflow, moves)


def test_the_picker_names_providers_as_files_do() -> None:
    assert workflow_provider("gemini") == "google"
    assert workflow_provider("openai") == "openai"


def estimate_page(home: Path, choice: str) -> AppTest:
    app = AppTest.from_file(ESTIMATE, default_timeout=60)
    app.session_state["workflow_choice"] = choice
    app.session_state["input:echo:message:string"] = "hello"
    return app.run()


def pick(app: AppTest, node: str, provider: str, model: str) -> AppTest:
    app.selectbox(key=f"whatif:digest:{node}:provider").set_value(provider).run()
    app.selectbox(key=f"whatif:digest:{node}:{provider}:model").set_value(model).run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    return app


def test_estimate_applies_a_what_if_to_a_saved_workflow(home: Path) -> None:
    saved = home / "workflows" / "digest.yaml"
    saved.parent.mkdir()
    saved.write_text(WORKFLOW)
    app = pick(estimate_page(home, str(saved)), "plan", "gemini", "gemini/gemini-2.5-flash-lite")
    provider = app.selectbox(key="whatif:digest:plan:provider")
    assert provider.format_func(provider.value) == "google"
    diff = app.code[0].value
    assert "+    llm: {provider: google, model: gemini-2.5-flash-lite}" in diff
    changed = [line[0] for line in diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed == ["+"]  # one line added, nothing else touched
    next(b for b in app.button if b.label == "Save to digest.yaml").click().run()
    assert not app.exception
    text = saved.read_text()
    assert text.startswith("# Team digest: keep this header.")
    written = load_workflow(saved)
    assert written.llm_for(written.spec.nodes[0]).provider == "google"
    assert any("Saved to" in str(s.value) for s in app.success)
    assert not app.code  # the picker is back on the file's models: nothing left to apply


def test_an_example_is_saved_as_a_renamed_copy_or_run_once(home: Path) -> None:
    example = ROOT / "data" / "workflows" / "echo.yaml"
    original = example.read_text()
    workflow = load_workflow(example)
    node = workflow.spec.nodes[0].name
    app = estimate_page(home, str(example))
    base = f"whatif:{workflow.name}:{node}"
    app.selectbox(key=f"{base}:provider").set_value("openai").run()
    app.selectbox(key=f"{base}:openai:model").set_value("gpt-4.1-mini").run()
    app.text_input(key="whatif_copy").set_value("no good!").run()
    assert any("not a valid name" in str(c.value) for c in app.caption)
    assert next(b for b in app.button if b.label == "Save as a copy").disabled
    app.text_input(key="whatif_copy").set_value("echo_mini").run()
    next(b for b in app.button if b.label == "Save as a copy").click().run()
    copy = load_workflow(home / "workflows" / "echo_mini.yaml")
    assert copy.name == "echo_mini" and example.read_text() == original
    assert copy.llm_for(copy.spec.nodes[0]).model == "gpt-4.1-mini"

    app = estimate_page(home, str(example))
    app.selectbox(key=f"{base}:provider").set_value("openai").run()
    app.selectbox(key=f"{base}:openai:model").set_value("gpt-4.1-mini").run()
    started = len(background.recent())
    next(b for b in app.button if b.label == "Run once with these models").click().run()
    assert any("not saved" in str(i.value) for i in app.info)
    run = background.recent()[0]
    assert len(background.recent()) == started + 1 and example.read_text() == original
    deadline = time.monotonic() + 30
    while not run.done and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.result is not None and run.result.status == "success", run.error
    assert run.workflow.llm_for(run.workflow.spec.nodes[0]).model == "gpt-4.1-mini"


def test_a_costs_recommendation_opens_in_estimate_with_the_switch_picked(home: Path) -> None:
    runs = [make_run(f"e{i}", D1, 0.01, workflow="echo") for i in range(3)]
    nodes = [
        make_node(
            f"e{i}",
            "echo",
            D1,
            workflow="echo",
            input_tokens=2000,
            output_tokens=500,
            cost_usd=litellm_cost("openai", "gpt-4o", 2000, 500),
        )
        for i in range(3)
    ]
    write_rows(home, runs, nodes)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["input:echo:message:string"] = "hello"
    app.switch_page("pages/5_Costs.py").run()
    apply = next(b for b in app.tabs[0].button if b.label.startswith("Apply: echo → "))
    model = apply.label.split("→ ")[1].split(" (")[0]
    apply.click().run()  # the app moves to the Estimate page, the switch picked
    assert not app.exception, app.exception[0].message if app.exception else ""
    assert app.session_state["workflow_choice"].endswith("echo.yaml")
    assert f"model: {model}" in app.code[0].value
