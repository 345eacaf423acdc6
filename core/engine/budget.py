"""Per-run token and cost budgets, held against the provider's own usage.

A call reserves its worst case before it starts: its input tokens, counted locally and
scaled by how far this run's provider has out-counted us so far, plus its
`max_output_tokens` (and their price). Parallel nodes racing for the last of the budget
cannot overshoot it together: the scheduler runs on one event loop, and reserve() checks and
books in one step. A reply is charged at what the provider reports; one larger than its
reservation is charged in full at once, so no later call starts unless it still fits.

The guarantee: a run's spend never exceeds its budget by more than what the calls in flight
when the last call started used beyond their reservations (docs/workflow-format.md).
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
        # Provider-reported input tokens over locally counted ones, per model: tokenizers
        # differ, and some servers add tokens of their own (templates, tool prompts).
        self._input_factor: dict[tuple[str, str], float] = {}
        self.overrun_tokens = 0  # usage beyond reservations, summed over calls
        self.warnings: list[str] = []
        self._warned = False

    @property
    def active(self) -> bool:
        return self.max_tokens is not None or self.max_cost is not None

    def input_factor(self, model: tuple[str, str]) -> float:
        return self._input_factor.get(model, 1.0)

    def learn(self, model: tuple[str, str], counted: int, reported: int) -> None:
        """Remember how many input tokens the provider bills per token counted here."""
        if counted > 0 and reported > counted * self.input_factor(model):
            self._input_factor[model] = reported / counted

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
        """Replace a reservation by what the call actually used, overrun included."""
        self._reserved_tokens -= reservation.tokens
        self._reserved_cost -= reservation.cost
        self.used_tokens += tokens
        self.used_cost += cost or 0.0
        self.overrun_tokens += max(0, tokens - reservation.tokens)
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
