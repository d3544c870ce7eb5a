"""Which decoded frames go to inference: every Nth, and at most F per second."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FrameSampler:
    """Decides, frame by frame, whether a decoded frame is analysed. Frames left out are
    counted as skipped (an explicit choice, like drops), never silently lost. One per stream."""

    every: int = 1
    max_fps: float | None = None
    _seen: int = 0
    _next_at: float = float("-inf")

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.max_fps is not None and self.max_fps <= 0:
            raise ValueError(f"max_fps must be > 0, got {self.max_fps}")

    def accept(self, now: float) -> bool:
        """`now`: the frame's capture time in seconds (a monotonic clock)."""
        index, self._seen = self._seen, self._seen + 1
        if index % self.every:
            return False
        if self.max_fps is None:
            return True
        if now < self._next_at:
            return False
        # Keep the cadence without drift (slots every period); after a gap longer than a
        # period (a stall, a reconnection), start again from now.
        period = 1.0 / self.max_fps
        if now - self._next_at > period:
            self._next_at = now
        self._next_at += period
        return True
