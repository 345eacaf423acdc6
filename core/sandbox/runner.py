"""Runs one code node inside the sandbox: `python3 -I -S runner.py PAYLOAD [WORKDIR]` (`-`
for the payload on stdin).

This file is executed by the sandbox's own interpreter (the host's Python for the process
backend, the image's for Docker), so it uses only the standard library and imports nothing
from the project. It reads the payload (code, inputs, upstream outputs, memory), runs the
code with those names in scope in its working directory, and writes its report to standard
output: the `result` value, or the error with its line inside the code block, what the code
printed (capped, so printing 100 MB costs no memory), and its own CPU time and peak memory.

The report leaves through a copy of standard output kept aside before the code starts; the
code's own descriptors 0-2 point at /dev/null, so nothing it writes can pass for the report
(short of hunting for the copy, which only spoils its own result). Nothing is written to a
file the host reads, so the working directory can be a private tmpfs that dies with the run.
"""

import io
import json
import os
import resource
import socket
import struct
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


def refuse_link_local() -> None:
    """Adds a `prohibit` route for 169.254.0.0/16 (RTM_NEWROUTE over netlink: the image may
    have no `ip`), so connecting to a cloud's metadata service fails at once. Needs root."""
    rtm_newroute, flags = 24, 0x1 | 0x4 | 0x200 | 0x400  # REQUEST | ACK | EXCL | CREATE
    table_main, protocol_boot, scope_universe, type_prohibit, rta_dst = 254, 3, 0, 8, 1
    route = struct.pack(
        "BBBBBBBBI", socket.AF_INET, 16, 0, 0, table_main, protocol_boot, scope_universe,
        type_prohibit, 0,
    )  # fmt: skip
    destination = socket.inet_aton("169.254.0.0")
    body = route + struct.pack("HH", 4 + len(destination), rta_dst) + destination
    message = struct.pack("IHHII", 16 + len(body), rtm_newroute, flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as link:
        link.bind((0, 0))
        link.send(message)
        reply = link.recv(4096)
    if struct.unpack_from("H", reply, 4)[0] == 2:  # NLMSG_ERROR: 0 is the acknowledgement
        code = struct.unpack_from("i", reply, 16)[0]
        if code:
            raise OSError(-code, os.strerror(-code))


def become(uid: int, gid: int) -> None:
    """From root to the unprivileged user: every capability goes with it."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def main() -> None:
    source = sys.argv[1]
    if source == "-":
        payload = json.load(sys.stdin)
    else:
        with open(source, encoding="utf-8") as handle:
            payload = json.load(handle)
    if payload.get("drop_to"):
        refuse_link_local()
        become(*payload["drop_to"])
    if len(sys.argv) > 2:
        os.chdir(sys.argv[2])
    report = os.dup(1)
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(quiet, fd)
    me = os.getpid()
    outcome = run(payload)
    if os.getpid() != me:
        # A process the code forked got here too: only the runner itself reports, or the
        # children's reports would interleave with the real one.
        os._exit(0)
    data = json.dumps(outcome).encode()
    while data:
        data = data[os.write(report, data) :]


if __name__ == "__main__":
    main()
