"""Hostile and oversized inputs, as generators: the test suite runs them small, bench/inputs.py
runs them at full size and prints how long each took.

Each shape is one a careless or hostile user can produce with a few lines of a script: an
alias bomb (a few hundred bytes that expand to billions of values), megabytes of keys, a
20,000-node chain or fan-out, nesting thousands deep, bytes that are not UTF-8.
"""

from __future__ import annotations

LLM = "{provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0, output_tokens: 5}}"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """`width ** levels` values from a few hundred bytes: each anchor lists the previous one
    `width` times (the 'billion laughs' shape)."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        items = ", ".join(f"*a{level - 1}" for _ in range(width))
        lines.append(f"a{level}: &a{level} [{items}]")
    lines.append("workflow: {name: bomb}")
    lines.append(f"nodes: [{{name: n, prompt: hi}}, *a{levels}]")
    return "\n".join(lines) + "\n"


def key_flood(size_bytes: int) -> str:
    """A valid workflow followed by an `inputs:` mapping of as many keys as fit."""
    head = f"workflow: {{name: flood, llm: {LLM}}}\nnodes: [{{name: n, prompt: hi}}]\ninputs:\n"
    lines = []
    total = len(head)
    index = 0
    while total < size_bytes:
        line = f"  k{index:09d}: {{type: string}}\n"
        lines.append(line)
        total += len(line)
        index += 1
    return head + "".join(lines)


def chain(nodes: int) -> str:
    """A chain in which every node reads its predecessor's output."""
    body = ["  - {name: n0, prompt: start}"]
    body += [f"  - {{name: n{i}, prompt: 'after {{n{i - 1}}}'}}" for i in range(1, nodes)]
    return f"workflow: {{name: chain{nodes}, llm: {LLM}}}\nnodes:\n" + "\n".join(body) + "\n"


def far_references(nodes: int) -> str:
    """A chain in which every node reads the first node: each reference crosses the whole
    chain, the worst case for a reachability check done per reference."""
    body = ["  - {name: n0, prompt: start}"]
    body += [f"  - {{name: n{i}, prompt: 'from {{n0}}'}}" for i in range(1, nodes)]
    return f"workflow: {{name: far{nodes}, llm: {LLM}}}\nnodes:\n" + "\n".join(body) + "\n"


def fan_out(width: int) -> str:
    """One root, `width` parallel branches reading it, one join reading none of them."""
    body = ["  - {name: root, prompt: start}"]
    body += [f"  - {{name: b{i}, prompt: 'from {{root}}'}}" for i in range(width)]
    body.append("  - {name: join, prompt: done}")
    edges = [f"  - {{from: root, to: b{i}}}" for i in range(width)]
    edges += [f"  - {{from: b{i}, to: join}}" for i in range(width)]
    return (
        f"workflow: {{name: fan{width}, llm: {LLM}}}\nnodes:\n"
        + "\n".join(body)
        + "\nedges:\n"
        + "\n".join(edges)
        + "\n"
    )


def long_cycle(nodes: int) -> str:
    """A chain closed into one cycle through every node."""
    names = [f"n{i}" for i in range(nodes)]
    body = [f"  - {{name: {name}, prompt: hi}}" for name in names]
    edges = [
        f"  - {{from: {a}, to: {b}}}" for a, b in zip(names, names[1:] + names[:1], strict=True)
    ]
    return (
        f"workflow: {{name: cycle{nodes}, llm: {LLM}}}\nnodes:\n"
        + "\n".join(body)
        + "\nedges:\n"
        + "\n".join(edges)
        + "\n"
    )


def unknown_references(nodes: int) -> str:
    """Every node reads a node that does not exist: one problem (and one spelling
    suggestion search) per node."""
    body = [f"  - {{name: n{i}, prompt: 'from {{m{i}}}'}}" for i in range(nodes)]
    return f"workflow: {{name: typos{nodes}, llm: {LLM}}}\nnodes:\n" + "\n".join(body) + "\n"


def deep_yaml(depth: int) -> str:
    return "workflow: {name: deep}\nnodes: [{name: n, prompt: hi}]\nx: " + "[" * depth + "]" * depth


def deep_json(depth: int) -> str:
    return '{"topic": ' + "[" * depth + "]" * depth + "}"


NOT_UTF8 = b"workflow: {name: caf\xe9}\nnodes: [{name: n, prompt: hi}]\n"
