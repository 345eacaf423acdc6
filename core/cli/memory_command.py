"""`configurable-agents memory list|get|clear --namespace NS`: look into and reset memory."""

from __future__ import annotations

import argparse
import json
import sys

from core.settings import data_home

PREVIEW = 80


def _preview(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def command(args: argparse.Namespace) -> int:
    from core.engine.memory import memory_store, valid_namespace

    store = memory_store(data_home())
    namespace = args.namespace
    if namespace is not None and not valid_namespace(namespace):
        print(f"error: invalid namespace {namespace!r} (letters, digits, _ and -)", file=sys.stderr)
        return 2
    if args.action == "list":
        spaces = [namespace] if namespace else store.namespaces()
        if not spaces:
            print("no memory yet")
        document = {space: store.snapshot(space) for space in spaces}
        if args.json:
            print(json.dumps(document, indent=2, ensure_ascii=False, default=str))
            return 0
        for space, values in document.items():
            print(f"{space}: {len(values)} key{'s' * (len(values) != 1)}")
            for key, value in sorted(values.items()):
                print(f"  {key} = {_preview(value)}")
        return 0
    if namespace is None:
        print(f"error: memory {args.action} needs --namespace NS", file=sys.stderr)
        return 2
    if args.action == "get":
        values = store.snapshot(namespace)
        if args.key not in values:
            print(f"error: no key {args.key!r} in namespace {namespace!r}", file=sys.stderr)
            return 1
        value = values[args.key]
        print(value if isinstance(value, str) and not args.json else json.dumps(value, indent=2))
        return 0
    removed = store.clear(namespace)
    print(f"cleared {removed} key{'s' * (removed != 1)} from {namespace}")
    return 0
