"""`configurable-agents schema [workflow|experiment] [-o FILE]`: a file format as a JSON
Schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def command(args: argparse.Namespace) -> int:
    """Stdout by default, so it pipes into other tools; with --output, a note on stderr."""
    if args.kind == "experiment":
        from core.experiments.json_schema import experiment_json_schema as build
    else:
        from core.workflow.json_schema import workflow_json_schema as build

    text = json.dumps(build(), indent=2) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
