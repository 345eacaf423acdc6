"""The `python` scorer: the user's code in the code nodes' sandbox, never in the engine.

The code sees `output`, `expected` and `inputs` and sets `score` in [0, 1] (and may set
`reason`). It runs as untrusted code does everywhere in the product: in a separate process
(or container) with no network, no environment and the preset's limits, so a scorer cannot
read API keys or the telemetry it is being scored for.
"""

from __future__ import annotations

from typing import Any

from core.engine.code_node import sandbox_for
from core.experiments.model import Python
from core.experiments.scorers import Verdict
from core.experiments.validation import PYTHON_PRELUDE
from core.sandbox.base import Job, SandboxUnavailable
from core.sandbox.limits import Limits

# `result` is what the sandbox hands back; the prelude's names are set before the user's code.
_EPILOGUE = "\nresult = {'score': score, 'reason': reason}\n"


async def run_python_scorer(
    scorer: Python, output: Any, expected: Any, inputs: dict[str, Any]
) -> Verdict:
    job = Job(
        code=PYTHON_PRELUDE + scorer.code + _EPILOGUE,
        inputs={"output": output, "expected": expected, "inputs": inputs},
        nodes={},
        memory=None,
        limits=Limits.from_settings(scorer.sandbox, None),
    )
    try:
        outcome = await sandbox_for(scorer.sandbox).run(job)
    except SandboxUnavailable as exc:
        return Verdict(None, f"sandbox unavailable: {exc}")
    if not outcome.ok:
        where = f" (line {outcome.error_line - 1} of the code)" if outcome.error_line else ""
        return Verdict(None, f"the scorer's code failed: {outcome.error}{where}")
    result = outcome.result if isinstance(outcome.result, dict) else {}
    score, reason = result.get("score"), result.get("reason")
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 1:
        return Verdict(None, f"the code must set score to a number in [0, 1], got {score!r}")
    return Verdict(float(score), " ".join(str(reason or "").split())[:200] or f"score {score:g}")
