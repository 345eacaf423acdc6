"""Per-run token and cost budgets, enforced by reserving each call's worst case first.

A call reserves its counted input tokens plus its `max_output_tokens` (and their price)
before it starts, so parallel nodes racing for the last of the budget cannot overshoot it
together: the scheduler runs on one event loop, and reserve() checks and books in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

WARN_AT = 0.8


@dataclass
class Reservation:
    tokens: int
    cost: float


class BudgetExceeded(Exception):
    pass


class Budget:
    def __init__(self, max_tokens: int | None, max_cost: float | None) -> None:
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.used_tokens = 0
        self.used_cost = 0.0
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        self.warnings: list[str] = []
        self._warned = False

    def reserve(self, tokens: int, cost: float | None) -> Reservation:
        """Book a call's worst case or raise BudgetExceeded naming the limit it would break."""
        cost = cost or 0.0
        if self.max_tokens is not None:
            after = self.used_tokens + self._reserved_tokens + tokens
            if after > self.max_tokens:
                raise BudgetExceeded(
                    f"max_tokens {self.max_tokens:,} would be exceeded: {self.used_tokens:,} used,"
                    f" {self._reserved_tokens:,} reserved by running nodes, this call needs up to"
                    f" {tokens:,}"
                )
        if self.max_cost is not None:
            after_cost = self.used_cost + self._reserved_cost + cost
            if after_cost > self.max_cost:
                raise BudgetExceeded(
                    f"max_cost ${self.max_cost:.4f} would be exceeded: ${self.used_cost:.4f} "
                    f"spent, ${self._reserved_cost:.4f} reserved by running nodes, this call "
                    f"could cost up to ${cost:.4f}"
                )
        self._reserved_tokens += tokens
        self._reserved_cost += cost
        return Reservation(tokens, cost)

    def settle(self, reservation: Reservation, tokens: int, cost: float | None) -> None:
        """Replace a reservation by what the call actually used."""
        self._reserved_tokens -= reservation.tokens
        self._reserved_cost -= reservation.cost
        self.used_tokens += tokens
        self.used_cost += cost or 0.0
        self._check_warning()

    def _check_warning(self) -> None:
        if self._warned:
            return
        shares = []
        if self.max_tokens:
            shares.append(("max_tokens", self.used_tokens / self.max_tokens))
        if self.max_cost:
            shares.append(("max_cost", self.used_cost / self.max_cost))
        for name, share in shares:
            if share >= WARN_AT:
                self._warned = True
                self.warnings.append(f"budget: {share:.0%} of {name} used")
                return
