"""The frame type every stage shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of one stream.

    `index` counts decoded frames of the stream from 0; `pts_ms` is the stream's presentation
    time; `captured_at` is the wall-clock time (`time.time()`) when the decoder returned it.
    """

    stream: str
    index: int
    pts_ms: float
    captured_at: float
    image: np.ndarray
