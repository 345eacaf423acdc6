"""The hostile-code suite against the process sandbox (the same cases run against Docker)."""

from __future__ import annotations

import pytest
from sandbox_hostile import CASES, HostileCase, check_case, host_side

from core.sandbox.process_backend import ProcessSandbox


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_hostile_code_is_contained(case: HostileCase) -> None:
    with host_side() as host:
        await check_case(ProcessSandbox(), case, host)
