"""Prompts and responses in telemetry: written compressed and once per distinct text, read
back whole, and pruned after a retention period.

A run's rendered prompts repeat a great deal (the same system text on every call, the same
prompt when inputs repeat), so each text is stored once under its hash and node calls refer
to it; zlib (the standard library's) shrinks what remains several times over. The texts
travel through the spool like every other event, so they are as crash-safe and exactly-once
as node_runs (docs/telemetry-write-path.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

CODEC = "zlib"
# A text longer than this is cut (with a marker) before it is stored: a 40 MB response must
# not make a 40 MB spool line. The spool keeps the compressed field whole (spool.py).
MAX_CONTENT_CHARS = 1_000_000
RETENTION_VARIABLE = "CONFIGURABLE_AGENTS_CONTENT_DAYS"
_ROLES = ("prompt", "system", "response")


def content_hash(text: str) -> str:
    """The identity of a text: equal texts share one stored copy."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _bounded(text: str) -> str:
    if len(text) <= MAX_CONTENT_CHARS:
        return text
    cut = len(text) - MAX_CONTENT_CHARS
    return f"{text[:MAX_CONTENT_CHARS]}… [truncated: {cut:,} more characters]"


# Texts recently packed by this process, so a repeated one (a system text on every call, a
# prompt repeated by the same inputs) is not hashed and compressed again on the engine's
# path. Its event is still written: the database, not this memo, deduplicates. Short texts
# only, so the memo stays a few megabytes.
_MEMO_CHARS = 16_384
_MEMO_ENTRIES = 512
_memo: dict[str, tuple[str, int, str]] = {}
_memo_lock = threading.Lock()


def _packed(text: str) -> tuple[str, int, str]:
    """(hash, length, base64 of the zlib) of `text`, cut to MAX_CONTENT_CHARS first."""
    found = _memo.get(text)
    if found is not None:
        return found
    bounded = _bounded(text)
    packed = base64.b64encode(zlib.compress(bounded.encode("utf-8"), 6)).decode("ascii")
    result = (content_hash(bounded), len(bounded), packed)
    if len(text) <= _MEMO_CHARS:
        with _memo_lock:  # runs of the app go on in threads of their own
            if len(_memo) >= _MEMO_ENTRIES:
                _memo.pop(next(iter(_memo)))  # the oldest: dicts keep insertion order
            _memo[text] = result
    return result


def content_events(
    run_id: str,
    node: str,
    run_started_at: datetime,
    texts: dict[str, str | None],
    cache_key: str | None,
    now: datetime,
) -> list[tuple[str, dict[str, Any]]]:
    """The spool events (name, row) recording one node call's texts: one `content` event
    per text (the database keeps the first of equal hashes) and the `node_content` row that
    refers to them. `texts` maps prompt, system and response to a text or None."""
    events: list[tuple[str, dict[str, Any]]] = []
    ref: dict[str, Any] = {
        "run_id": run_id,
        "node": node,
        "run_started_at": run_started_at,
        "cache_key": cache_key,
    }
    for role in _ROLES:
        text = texts.get(role)
        if text is None:
            ref[f"{role}_hash"] = None
            continue
        digest, chars, packed = _packed(text)
        ref[f"{role}_hash"] = digest
        events.append(
            (
                "content",
                {
                    "content_hash": digest,
                    "codec": CODEC,
                    "chars": chars,
                    "compressed": packed,
                    "first_seen": now,
                },
            )
        )
    events.append(("node_content", ref))
    return events


def unpack(codec: str | None, data: bytes | None) -> str | None:
    """A stored text, or None when it is missing or cannot be read."""
    if data is None or codec != CODEC:
        return None
    try:
        return zlib.decompress(data).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class NodeContent:
    """What one node call sent and got back; a text is None when it was not sent (no
    system text), not received (the call failed) or no longer stored."""

    prompt: str | None
    system: str | None
    response: str | None
    cache_key: str | None


def read_node_content(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, NodeContent]:
    """The stored texts of each node of run `run_id` that stored any, by node name."""
    rows = con.execute(
        """
        SELECT n.node, n.cache_key,
            p.codec, p.compressed, s.codec, s.compressed, r.codec, r.compressed
        FROM node_content n
        LEFT JOIN content p ON p.content_hash = n.prompt_hash
        LEFT JOIN content s ON s.content_hash = n.system_hash
        LEFT JOIN content r ON r.content_hash = n.response_hash
        WHERE n.run_id = ?
        """,
        [run_id],
    ).fetchall()
    return {
        node: NodeContent(unpack(pc, pd), unpack(sc, sd), unpack(rc, rd), key)
        for node, key, pc, pd, sc, sd, rc, rd in rows
    }


class RetentionError(ValueError):
    """The retention setting is not a whole number of days of at least one."""


def retention_days(value: str | None = None) -> int | None:
    """Days of content to keep, from `value` or $CONFIGURABLE_AGENTS_CONTENT_DAYS; None
    keeps it all."""
    text = os.environ.get(RETENTION_VARIABLE, "") if value is None else value
    if not text.strip():
        return None
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise RetentionError(
            f"{RETENTION_VARIABLE}: expected a whole number of days, at least 1, got {text!r}"
        )
    return days


@dataclass(frozen=True)
class Pruned:
    node_calls: int  # node_content rows removed
    texts: int  # distinct texts no longer referred to, removed


def prune_content(con: duckdb.DuckDBPyConnection, before: datetime) -> Pruned:
    """Deletes the texts of runs that started before `before`, in one transaction. Runs and
    node_runs stay: past spend and profiles must not change when content expires."""
    con.execute("BEGIN")
    (calls,) = con.execute(
        "SELECT count(*) FROM node_content WHERE run_started_at < ?", [before]
    ).fetchone()
    con.execute("DELETE FROM node_content WHERE run_started_at < ?", [before])
    (texts,) = con.execute(
        "SELECT count(*) FROM content WHERE content_hash NOT IN (SELECT h FROM"
        f" ({_REFERENCED}) WHERE h IS NOT NULL)"
    ).fetchone()
    con.execute(
        "DELETE FROM content WHERE content_hash NOT IN"
        f" (SELECT h FROM ({_REFERENCED}) WHERE h IS NOT NULL)"
    )
    con.execute("COMMIT")
    return Pruned(int(calls), int(texts))


_REFERENCED = " UNION ".join(f"SELECT {role}_hash AS h FROM node_content" for role in _ROLES)


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """The start of the last `days` whole UTC days, today included (as cost-report counts
    days): content of runs that started before it is pruned."""
    today = (now or datetime.now(UTC)).date()
    return datetime.combine(today - timedelta(days=days - 1), datetime.min.time())
