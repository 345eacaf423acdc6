"""Runs one code node inside the sandbox: `python3 -I -S runner.py WORKDIR`.

This file is executed by the sandbox's own interpreter (the host's Python for the process
backend, the image's for Docker), so it uses only the standard library and imports nothing
from the project. It reads `payload.json` (code, inputs, upstream outputs, memory) from the
working directory, runs the code with those names in scope, and writes `result.json`: the
`result` value, or the error with its line inside the code block, what the code printed
(capped, so printing 100 MB costs no memory), and its own CPU time and peak memory.
"""

import io
import json
import os
import resource
import sys
import traceback

CODE_FILENAME = "<code>"


class CappedOutput(io.TextIOBase):
    """Keeps the first `keep` characters printed and counts the rest."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.total += len(text)
        if self.kept < self.keep:
            piece = text[: self.keep - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(text)

    def text(self) -> str:
        printed = "".join(self.parts)
        if self.total > self.kept:
            printed += f"\n… [{self.total - self.kept:,} more characters not kept]"
        return printed


def code_line(error: BaseException) -> int | None:
    """The line of the user's code where `error` happened (innermost frame in the code)."""
    if isinstance(error, SyntaxError) and error.filename == CODE_FILENAME:
        return error.lineno
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == CODE_FILENAME:
            line = frame.lineno
    return line


def usage() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "peak_memory_mb": max(own.ru_maxrss, children.ru_maxrss) / 1024,
    }


def run(payload: dict) -> dict:
    scope = {
        "__name__": "__sandbox__",
        "inputs": payload["inputs"],
        "nodes": payload["nodes"],
        "result": None,
    }
    if payload.get("memory") is not None:
        scope["memory"] = payload["memory"]
    printed = CappedOutput(payload["stdout_keep"])
    sys.stdout = sys.stderr = printed
    try:
        exec(compile(payload["code"], CODE_FILENAME, "exec"), scope)
    except MemoryError as error:
        outcome = {**_failure(error), "reason": "memory"}
    except BaseException as error:  # the user's code may raise anything, SystemExit included
        outcome = _failure(error)
    else:
        outcome = _encode(scope, payload["max_result_bytes"])
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    outcome["stdout"] = printed.text()
    outcome["stdout_chars"] = printed.total
    outcome.update(usage())
    return outcome


def _encode(scope: dict, limit: int) -> dict:
    """The result (and memory) as JSON values, or why they cannot leave the sandbox."""
    try:
        encoded = json.dumps(scope["result"], allow_nan=False)
        memory = json.dumps(scope["memory"], allow_nan=False) if "memory" in scope else None
    except (TypeError, ValueError) as error:
        return {"ok": False, "error": f"result is not JSON-serialisable: {error}",
                "reason": "result_not_json"}  # fmt: skip
    size = len(encoded.encode())
    if size > limit:
        return {"ok": False, "reason": "result_too_large",
                "error": f"result is {size:,} bytes of JSON; the limit is {limit:,}"}  # fmt: skip
    outcome = {"ok": True, "result": json.loads(encoded)}
    if memory is not None:
        outcome["memory"] = json.loads(memory)
    return outcome


def _failure(error: BaseException) -> dict:
    name = type(error).__name__
    message = str(error) if not isinstance(error, SyntaxError) else error.msg
    return {
        "error": f"{name}: {message}" if message else name,
        "error_line": code_line(error),
        "reason": "syntax_error" if isinstance(error, SyntaxError) else "exception",
    }


def main() -> None:
    workdir = sys.argv[1]
    with open(os.path.join(workdir, "payload.json"), encoding="utf-8") as handle:
        payload = json.load(handle)
    os.remove(os.path.join(workdir, "payload.json"))
    me = os.getpid()
    outcome = run(payload)
    if os.getpid() != me:
        # A process the code forked got here too: only the runner itself reports, or the
        # children's reports would overwrite (and could interleave with) the real one.
        os._exit(0)
    temporary = os.path.join(workdir, ".result.json")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(outcome, handle)
    os.replace(temporary, os.path.join(workdir, "result.json"))


if __name__ == "__main__":
    main()
