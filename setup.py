"""Build step of the wheel: the package carries the app script, its pages and the example
workflows and experiments (`core/_bundled/`), so `configurable-agents app` works from an
installed wheel as from a checkout. Everything else is declared in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("app.py", "pages", "data/workflows", "data/experiments", ".streamlit/config.toml")


class BuildWithApp(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs the checkout's own files
        target = Path(self.build_lib) / "core" / "_bundled"
        for item in BUNDLED:
            source, copy = Path(item), target / item
            copy.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(
                    source, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(source, copy)


setup(cmdclass={"build_py": BuildWithApp})
