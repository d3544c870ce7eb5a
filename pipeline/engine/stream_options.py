"""Per-stream settings shared by every stream of a pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.engine.frame_queue import QueuePolicy
from sources.live_options import LiveOptions


@dataclass(frozen=True)
class StreamOptions:
    """How streams are read and queued.

    `policy` overrides each source's own back-pressure policy (files block, live streams drop
    their oldest queued frame); `every` analyses every Nth decoded frame and `max_fps` at most
    that many per second per stream (frames left out are counted as skipped); `live` says how
    live streams connect; `lane_capacity` is the queued frames per stream (default: enough
    that twice the request pool is queued in all).
    """

    policy: QueuePolicy | None = None
    every: int = 1
    max_fps: float | None = None
    live: LiveOptions = field(default_factory=LiveOptions)
    lane_capacity: int | None = None

    @property
    def samples(self) -> bool:
        """Whether some decoded frames are left out of inference."""
        return self.every > 1 or self.max_fps is not None
