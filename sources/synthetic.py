"""A source of generated frames, for benchmarks with no video at hand."""

from __future__ import annotations

import numpy as np


class SyntheticSource:
    """`frames` noise frames of `size` (width, height), at a nominal 25 fps."""

    live = False

    def __init__(self, name: str, frames: int, size: tuple[int, int] = (768, 432)) -> None:
        self.name = name
        self.uri = f"synthetic:{size[0]}x{size[1]}"
        self.size = size
        self.fps = 25.0
        self.declared_frames = frames
        self._pool: list[np.ndarray] = []
        self._next = 0

    def open(self) -> None:
        rng = np.random.default_rng(0)
        shape = (self.size[1], self.size[0], 3)
        self._pool = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(4)]

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._next >= self.declared_frames:
            return None
        image = self._pool[self._next % len(self._pool)]
        pts_ms = self._next * 1000.0 / self.fps
        self._next += 1
        return image, pts_ms

    def interrupt(self) -> None:
        pass  # reads never wait long

    def release(self) -> None:
        self._pool = []
