"""What one model call used, as the provider reported it: what the call is priced on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and one of
# these is built per call on the engine's hot path.
@dataclass(slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0  # of input_tokens, read from the provider's prompt cache
    reasoning_tokens: int = 0  # of output_tokens, spent on hidden reasoning
    estimated: bool = False  # the provider reported no usage: counted locally instead
    raw: Any = field(default=None, compare=False)  # the provider's own usage object

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens
