"""The optional dependencies the exporters need, and the error that names how to get them."""

from __future__ import annotations


class MissingExtra(ImportError):
    """An exporter was used without its optional dependencies installed."""


def missing_extra(extra: str, what: str) -> MissingExtra:
    """The error to raise `from` an ImportError of the `extra`'s packages."""
    return MissingExtra(
        f"{what} needs the optional '{extra}' dependencies: "
        f"pip install 'configurable-agents[{extra}]'"
    )
