"""The current processing rate of each service class, from its frame count sampled over time."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

RATE_WINDOW_S = 5.0


class ClassRates:
    """Frames per second of each service class over about the last `window` seconds, from
    its processed-frame count sampled on the pipeline's tick (the count over the pipeline's
    whole run, which a months-long service needs as a rate of now, not a mean since its
    start). A count that goes down (a new pipeline) starts that class's window again."""

    def __init__(
        self, window: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def sample(self, frames: Mapping[str, int]) -> None:
        now = self._clock()
        with self._lock:
            for name, count in frames.items():
                samples = self._samples.setdefault(name, deque())
                if samples and count < samples[-1][1]:
                    samples.clear()
                samples.append((now, count))
                while len(samples) > 2 and now - samples[1][0] >= self.window:
                    samples.popleft()  # the oldest kept is the last at least `window` old

    def fps(self, name: str) -> float:
        with self._lock:
            samples = self._samples.get(name)
            if not samples or len(samples) < 2:
                return 0.0
            (t0, c0), (t1, c1) = samples[0], samples[-1]
        return round((c1 - c0) / (t1 - t0), 2) if t1 > t0 else 0.0

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
