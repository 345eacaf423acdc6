"""Transactions DuckDB loses when processes take turns committing to one file.

Several processes each commit a batch of rows plus a ledger entry many times, connecting
and closing around every commit (as the telemetry loader does), once with DuckDB's own file
lock only and once holding a lock file of ours (flock) from before the connection is made
until after it is closed (core.telemetry.store). Printed: committed transactions expected
and found, per trial. DuckDB 2.0.1 on a 2-core VM lost a few in every 900 with its own lock
alone; that is the rare silent loss of telemetry the lock file fixed.

    python bench/duckdb_handoff.py [--processes 6] [--commits 150] [--trials 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

LOCK_ERROR = "Could not set lock"


def _connect(path: str, lock: int) -> duckdb.DuckDBPyConnection:
    """A connection, retried while another process has the file; with a lock file (`lock`
    >= 0), made while holding it: the caller releases it once the connection is closed."""
    while True:
        if lock >= 0:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if lock >= 0:
                fcntl.flock(lock, fcntl.LOCK_UN)
            if LOCK_ERROR not in str(exc):
                raise
        time.sleep(random.uniform(0.002, 0.02))


def commit_many(path: str, tag: str, commits: int, own_lock: bool) -> None:
    """One writer: `commits` transactions, each on a connection of its own. A transaction
    DuckDB refuses is reported on stderr (the parent does not count it as committed)."""
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644) if own_lock else -1
    for number in range(commits):
        con = _connect(path, lock)
        try:
            con.execute("CREATE TABLE IF NOT EXISTS rows (tag VARCHAR, n INTEGER, pad VARCHAR)")
            con.execute("CREATE TABLE IF NOT EXISTS ledger (segment VARCHAR)")
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO rows SELECT ?, ?, repeat('x', 200) FROM range(50)", [tag, number]
            )
            con.execute("INSERT INTO ledger VALUES (?)", [f"{tag}/{number}"])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            print(f"refused: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        finally:
            con.close()
            if lock >= 0:
                fcntl.flock(lock, fcntl.LOCK_UN)


def trial(processes: int, commits: int, own_lock: bool) -> tuple[int, int]:
    """(committed transactions expected, found) for one round of `processes` writers."""
    folder = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    path = str(folder / "t.duckdb")
    writers = [
        subprocess.Popen(
            [sys.executable, __file__, "--writer", path, f"w{i}", str(commits), str(int(own_lock))],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    failures = 0
    for writer in writers:
        _, err = writer.communicate()
        failures += len([line for line in err.splitlines() if line.startswith("refused:")])
    with duckdb.connect(path, read_only=True) as con:
        (found,) = con.execute("SELECT count(*) FROM ledger").fetchone()
    return processes * commits - failures, found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        _, _, path, tag, commits, own_lock = sys.argv
        commit_many(path, tag, int(commits), own_lock == "1")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    print(f"DuckDB {duckdb.__version__}: {args.processes} processes x {args.commits} commits")
    for own_lock in (False, True):
        label = "with the lock file" if own_lock else "DuckDB's lock only"
        for number in range(args.trials):
            expected, found = trial(args.processes, args.commits, own_lock)
            lost = expected - found
            print(f"  {label:<20} trial {number + 1}: {found} of {expected} kept, {lost} lost")


if __name__ == "__main__":
    main()
