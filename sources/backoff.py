"""Exponential back-off with jitter between reconnection attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """Waits `initial` seconds before the first retry, doubling up to `cap`, each wait
    scattered by up to ±`jitter` (a fraction) so that cameras dropped together do not all
    retry at the same instant."""

    initial: float = 1.0
    cap: float = 30.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first)."""
        base = min(self.cap, self.initial * 2.0 ** max(0, attempt - 1))
        return base * self.rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
