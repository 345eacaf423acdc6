"""Reports as JSON documents: the dataclass as it is, timestamps in ISO 8601."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any


def to_json(report: Any) -> str:
    """A report dataclass as JSON: timestamps in ISO 8601, properties left out."""
    return json.dumps(dataclasses.asdict(report), indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
