"""A wheel built from the project carries what `configurable-agents app` needs outside a
checkout: the app script, its pages and the example workflows, found from the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "app.py", ".streamlit")
TREES = ("core", "pages", "data/workflows", "data/experiments")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the project so the checkout gains no build files."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, source / name)
    for name in TREES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return next(out.glob("*.whl"))


def test_the_wheel_ships_the_app_pages_and_examples(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "core/_bundled/app.py" in names
    pages = {Path(n).name for n in names if n.startswith("core/_bundled/pages/")}
    assert pages == {p.name for p in (ROOT / "pages").glob("*.py")}
    examples = {Path(n).name for n in names if n.startswith("core/_bundled/data/workflows/")}
    assert examples == {p.name for p in (ROOT / "data" / "workflows").glob("*.yaml")}
    shipped = {n.removeprefix("core/_bundled/") for n in names if "/data/experiments/" in n}
    source = ROOT / "data" / "experiments"
    assert shipped == {str(p.relative_to(ROOT)) for p in source.rglob("*") if p.is_file()}


def test_an_installed_package_finds_its_own_copies(wheel: Path, tmp_path: Path) -> None:
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # -S: no site-packages, so the checkout's editable install cannot answer instead.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from core import resources; "
        "print(resources.APP_SCRIPT); print(len(list(resources.EXAMPLE_WORKFLOWS.glob('*.yaml'))))"
        "; print(len(list(resources.EXAMPLE_EXPERIMENTS.rglob('*.*'))))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(installed)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    app, examples, experiment_files = done.stdout.split()
    source = ROOT / "data" / "experiments"
    assert int(experiment_files) == len([p for p in source.rglob("*.*") if p.is_file()])
    assert Path(app) == installed / "core" / "_bundled" / "app.py"
    assert Path(app).is_file()
    assert int(examples) == len(list((ROOT / "data" / "workflows").glob("*.yaml")))
