"""The Editor page as a user drives it: live problems, the DAG, open/save and their guards.

AppTest cannot type into the Ace component, so text goes in through session state (as the
other pages read it) or through the plain text editor, which AppTest can drive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.app.dag import node_config, workflow_marks, workflow_summary
from core.app.editor_files import Document, name_problem, suggested_name, workflow_check

ROOT = Path(__file__).parent.parent
PAGE = str(ROOT / "pages" / "1_Editor.py")
EXAMPLES = ROOT / "data" / "workflows"
FANOUT = (EXAMPLES / "research_fanout.yaml").read_text(encoding="utf-8")
ECHO = (EXAMPLES / "echo.yaml").read_text(encoding="utf-8")

TYPO = """\
workflow:
  name: typo
nodes:
  - name: ask
    promt: Hello
"""
UNCLOSED = """\
workflow:
  name: broken
nodes:
  - name: ask
    prompt: "Hello
"""


@pytest.fixture
def app(home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(PAGE, default_timeout=30)


def opened(app: AppTest, text: str) -> None:
    """The page with `text` in the editor, as a new file (what another page or a test sets)."""
    app.session_state["workflow_text"] = text
    app.run()
    assert not app.exception


def messages(elements: Iterable[Any]) -> str:
    """Text of the page's callouts or captions, code spans unwrapped (`5:5` reads 5:5)."""
    return "\n".join(element.value for element in elements).replace("`", "")


def ace_args(app: AppTest) -> dict[str, object]:
    return json.loads(app.get("component_instance")[0].proto.json_args)


def test_page_renders_an_example_with_its_tools(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert app.title[0].value == "Workflow editor"
    for key in ("editor_open", "editor_new", "editor_save", "editor_save_as"):
        assert app.button(key=key)
    assert app.toggle(key="editor_plain").value is False
    assert ace_args(app)["mode"] == "yaml"
    assert app.session_state["workflow_text"] == ace_args(app)["defaultValue"]
    assert app.session_state["workflow_path"].endswith(".yaml")
    assert "bundled example" in messages(app.caption)
    assert not app.warning and not app.error


def test_unknown_key_is_listed_with_its_line_and_column_and_marked_in_the_gutter(
    app: AppTest,
) -> None:
    opened(app, TYPO)
    problems = messages(app.error)
    assert "5:5 unknown key 'promt' in node 'ask'; did you mean 'prompt'?" in problems
    assert "missing required key" not in problems  # the typo's suggestion stands for it
    gutter = {(a["row"], a["column"], a["type"]) for a in ace_args(app)["annotations"]}
    assert gutter == {(4, 4, "error")}
    assert "graph appears once the workflow is valid" in messages(app.info)


def test_yaml_syntax_error_is_located(app: AppTest) -> None:
    opened(app, UNCLOSED)
    assert "5:13 invalid YAML" in messages(app.error)


def _graph(app: AppTest) -> Any:
    """The DAG chart's element (the only chart with a node selection), or None."""
    charts = [c.proto for c in app.get("vega_lite_chart") if '"name": "node"' in c.proto.spec]
    return charts[0] if charts else None


def test_valid_workflow_shows_no_problems_and_its_graph(app: AppTest) -> None:
    opened(app, FANOUT)
    assert not app.error
    assert "No problems" in app.success[0].value
    assert ace_args(app)["annotations"] == []
    graph = _graph(app)
    assert graph is not None and '"name": "node"' in graph.spec  # a click selects a node
    rows = b"".join(d.data.data for d in graph.datasets)  # nodes and edges, as Arrow
    assert all(name.encode() in rows for name in ("plan", "risks", "synthesis"))
    assert "5 nodes · 5 LLM · 0 code · outputs: synthesis" in messages(app.caption)


def test_graph_keeps_the_last_valid_version_while_the_text_is_broken(app: AppTest) -> None:
    opened(app, FANOUT)
    app.toggle(key="editor_plain").set_value(True).run()
    app.text_area[0].input(FANOUT.replace("prompt:", "promt:", 1)).run()
    assert app.error and _graph(app) is not None
    assert "Last valid version" in messages(app.caption)

    app.text_area[0].input(TYPO).run()  # another workflow pasted over it: not its graph
    assert _graph(app) is None
    assert "graph appears once the workflow is valid" in messages(app.info)


def test_save_writes_a_new_file_into_the_workflows_folder(app: AppTest, home: Path) -> None:
    opened(app, ECHO)
    assert "not saved" in messages(app.caption) and app.warning
    app.button(key="editor_save").click().run()
    saved = home / "workflows" / "echo.yaml"
    assert saved.read_text(encoding="utf-8") == ECHO
    assert app.session_state["workflow_path"] == str(saved)
    assert "Saved" in app.success[0].value and not app.warning


def test_save_of_an_opened_example_makes_a_copy_and_leaves_the_example(
    app: AppTest, home: Path
) -> None:
    app.run()
    example = Path(app.session_state["workflow_path"])
    original = example.read_text(encoding="utf-8")
    app.session_state["workflow_text"] = original + "# mine\n"
    app.run()
    app.button(key="editor_save").click().run()
    assert example.read_text(encoding="utf-8") == original
    assert (home / "workflows" / example.name).read_text(encoding="utf-8") == original + "# mine\n"


def test_saving_work_in_progress_is_allowed_but_warns(app: AppTest, home: Path) -> None:
    opened(app, TYPO)
    app.button(key="editor_save").click().run()
    assert (home / "workflows" / "typo.yaml").read_text(encoding="utf-8") == TYPO
    assert "with 1 problem" in messages(app.warning)


def test_save_as_refuses_names_that_are_not_plain(app: AppTest, home: Path) -> None:
    opened(app, ECHO)
    app.text_input[0].input("../escape").run()
    app.button(key="editor_save_as").click().run()
    assert "not a valid name" in messages(app.error)
    assert not list((home / "workflows").iterdir())


def test_save_as_asks_before_overwriting(app: AppTest, home: Path) -> None:
    taken = home / "workflows" / "taken.yaml"
    taken.parent.mkdir()
    taken.write_text("old", encoding="utf-8")
    opened(app, ECHO)
    app.text_input[0].input("taken").run()
    app.button(key="editor_save_as").click().run()
    assert "already exists" in messages(app.warning)
    assert taken.read_text(encoding="utf-8") == "old"
    next(b for b in app.button if b.label == "Overwrite").click().run()
    assert taken.read_text(encoding="utf-8") == ECHO.replace("name: echo\n", "name: taken\n", 1)
    assert app.session_state["workflow_path"] == str(taken)


def test_a_copy_of_an_example_gets_its_own_workflow_name(app: AppTest, home: Path) -> None:
    """Saved under another name, an example (opened, or new from one) is renamed to match,
    so its runs never merge with the example's history; the example stays as it was, and a
    workflow of the user's own keeps the name it was given."""
    example = EXAMPLES / "echo.yaml"
    app.run()
    app.selectbox(key="editor_open_choice").set_value(example)
    app.button(key="editor_open").click().run()
    app.text_input[0].input("echo_mine").run()
    app.button(key="editor_save_as").click().run()
    copy = home / "workflows" / "echo_mine.yaml"
    renamed = ECHO.replace("name: echo\n", "name: echo_mine\n", 1)
    assert copy.read_text(encoding="utf-8") == renamed
    assert app.session_state["workflow_text"] == renamed  # the editor shows what was saved
    assert example.read_text(encoding="utf-8") == ECHO
    own = ECHO.replace("name: echo\n", "name: my_own\n", 1)
    opened(app, own)
    app.text_input[0].input("elsewhere").run()
    app.button(key="editor_save_as").click().run()
    assert (home / "workflows" / "elsewhere.yaml").read_text(encoding="utf-8") == own


def test_unsaved_changes_warning_appears_after_an_edit(app: AppTest) -> None:
    app.run()
    assert not app.warning
    app.toggle(key="editor_plain").set_value(True).run()
    edited = app.text_area[0].value + "# edit\n"
    app.text_area[0].input(edited).run()
    assert app.session_state["workflow_text"] == edited
    assert "Unsaved changes" in messages(app.warning)


def test_opening_another_file_with_unsaved_changes_asks_first(app: AppTest) -> None:
    app.run()
    first = app.session_state["workflow_path"]
    app.session_state["workflow_text"] = "# scribble\n"
    app.run()
    app.selectbox(key="editor_open_choice").set_value(EXAMPLES / "echo.yaml")
    app.button(key="editor_open").click().run()
    assert "Discard them" in messages(app.warning)
    assert app.session_state["workflow_text"] == "# scribble\n"

    next(b for b in app.button if b.label == "Keep editing").click().run()
    assert app.session_state["workflow_path"] == first
    assert "Discard them" not in messages(app.warning)

    app.button(key="editor_open").click().run()
    next(b for b in app.button if b.label == "Discard changes").click().run()
    assert app.session_state["workflow_text"] == ECHO
    assert app.session_state["workflow_path"] == str(EXAMPLES / "echo.yaml")
    assert not app.warning


def test_new_from_example_is_an_unsaved_new_file(app: AppTest) -> None:
    app.run()
    app.selectbox(key="editor_example_choice").set_value(EXAMPLES / "echo.yaml")
    app.button(key="editor_new").click().run()
    assert app.session_state["workflow_text"] == ECHO
    assert app.session_state["workflow_path"] is None
    assert "not saved" in messages(app.caption)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("flow", True),
        ("my-flow_2", True),
        ("flow.yaml", True),
        ("", False),
        ("a b", False),
        ("../x", False),
        ("x.yml", False),
    ],
)
def test_save_names_are_plain_stems(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok


def test_suggested_name_prefers_the_file_then_the_workflow_name() -> None:
    assert suggested_name(Document(ECHO, Path("/x/mine.yaml"))) == "mine"
    assert suggested_name(Document(ECHO, None)) == "echo"
    assert suggested_name(Document("workflow: [", None)) == "untitled"


DIGEST = """\
workflow:
  name: digest
  llm: {provider: openai, model: gpt-4o-mini}
inputs: {topic: string}
nodes:
  - name: gather
    prompt: "Facts about {inputs.topic}"
    llm: {provider: google, model: gemini-2.0-flash}
    cache: {enabled: true, ttl: 3600}
  - name: critique
    prompt: "Weaknesses of {gather}"
    output: json
    schema: {weaknesses: string, severity: integer}
  - name: summarize
    prompt: "Summarise {gather}, mindful of {critique.weaknesses}"
    memory: {enabled: true, namespace: research}
  - name: word_count
    type: code
    code: 'result = len(nodes["summarize"].split())'
    sandbox: {resource_preset: medium}
outputs: [summarize, word_count]
"""


def test_dag_shows_models_badges_edges_and_outputs() -> None:
    workflow, problems = workflow_check(DIGEST)
    assert problems == [] and workflow is not None
    marks = workflow_marks(workflow)
    assert marks["gather"].detail == "llm · gemini-2.0-flash (google) · ⚡ cache"
    assert "{} json: weaknesses, severity" in marks["critique"].detail
    assert marks["summarize"].detail.endswith("🧠 memory · output")
    assert marks["word_count"].group == "code"
    assert "code · sandbox medium" in marks["word_count"].detail
    assert workflow.graph.parents["summarize"] == ("critique",)  # without `edges:`, a chain
    assert node_config(workflow.nodes["word_count"])["sandbox"] == {"resource_preset": "medium"}
    assert workflow_summary(workflow) == (
        "4 nodes · 3 LLM · 1 code · outputs: summarize, word_count · "
        "models: gemini-2.0-flash, gpt-4o-mini"
    )
