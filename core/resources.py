"""Where the product's own files are: the app script, its pages, the example workflows and
experiments.

In a checkout they sit beside `core/`; an installed wheel carries copies of them inside the
package (`core/_bundled/`, written by the build step in setup.py), so `configurable-agents
app` works the same from either.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
BUNDLE_DIR = "_bundled"


def product_root() -> Path:
    """The folder holding app.py, pages/ and data/workflows/."""
    if (_CHECKOUT / "app.py").is_file() and (_CHECKOUT / "pages").is_dir():
        return _CHECKOUT
    return _PACKAGE / BUNDLE_DIR


ROOT = product_root()
APP_SCRIPT = ROOT / "app.py"
EXAMPLE_WORKFLOWS = ROOT / "data" / "workflows"
EXAMPLE_EXPERIMENTS = ROOT / "data" / "experiments"  # with their workflows and datasets
