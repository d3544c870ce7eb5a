"""Service classes: live streams (latency first) and batch work (throughput, spare capacity).

A stream's class follows from its source (a camera, an RTSP/HTTP stream or a realtime file is
live; a recorded file is batch) unless its options say otherwise. With `Scheduling.CLASSES`
the scheduler dispatches a ready live frame before any batch frame and holds batch work to a
bound of requests (`BatchBound`) while live streams run; `Scheduling.FAIR` serves every stream
round-robin whatever its class (the behaviour before classes, kept for comparison).
"""

from __future__ import annotations

import enum
import math


class ServiceClass(enum.Enum):
    LIVE = "live"
    BATCH = "batch"

    @classmethod
    def for_source(cls, live: bool) -> ServiceClass:
        return cls.LIVE if live else cls.BATCH


class Scheduling(enum.Enum):
    CLASSES = "classes"  # live frames first; batch fills the requests live leaves idle
    FAIR = "fair"  # round-robin over every stream, whatever its class


# Each measurement of the live frame rate covers at least this long.
_RATE_WINDOW_S = 1.0
_RATE_WEIGHT = 0.5  # weight of the newest window in the live rate's moving average


class BatchBound:
    """How many requests batch frames may hold at once while live streams run.

    Live frames need, on average, their rate times the service time of a request (Little's
    law) requests; the bound keeps those for them. The scheduler also dispatches a batch frame
    only into an idle execution slot of the device, which keeps the requests beyond the
    device's slots free for a live frame arriving between two: it finds a request idle and
    waits at most for the first inference to finish, never behind more than one round of batch
    inferences. The bound is at least one request (but a batch frame
    is only dispatched when no live frame waits: live streams that overload the device hold
    batch back entirely). `fixed` overrides the measured bound. On the CPU, batch beside live
    runs on the runtime's background copy, whose threads the OS preempts for live work: batch
    then holds that copy's requests, or `fixed` of them (`cap`). Used by the scheduler thread
    only.
    """

    def __init__(self, nireq: int, fixed: int | None = None) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"the batch request bound must be >= 1, got {fixed}")
        self.nireq = nireq
        self.fixed = fixed
        self.live_fps = 0.0
        self._window_start: float | None = None
        self._window_frames = 0

    def live_dispatched(self, now: float) -> None:
        """Count a live frame dispatched at `now` (monotonic seconds) into the live rate."""
        if self._window_start is None:
            self._window_start = now
        self._window_frames += 1
        self.observe(now)

    def observe(self, now: float) -> None:
        """Close the current window of the live rate if it is long enough."""
        if self._window_start is None:
            return
        elapsed = now - self._window_start
        if elapsed >= _RATE_WINDOW_S:
            rate = self._window_frames / elapsed
            self.live_fps += _RATE_WEIGHT * (rate - self.live_fps)
            self._window_start, self._window_frames = now, 0

    def cap(self, requests: int) -> int:
        """`requests`, or the fixed bound if that is lower."""
        return requests if self.fixed is None else min(self.fixed, requests)

    def value(self, service_seconds: float) -> int:
        """The bound, from the live rate and the measured per-request service time."""
        if self.fixed is not None:
            return self.cap(self.nireq)
        live_requests = math.ceil(self.live_fps * service_seconds)
        return max(1, self.nireq - live_requests)
