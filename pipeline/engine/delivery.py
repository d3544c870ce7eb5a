"""One stream's results, from the inference callback to its sinks, on a thread of its own.

OpenVINO's completion callback only postprocesses a frame and hands its result to the stream's
in-order release, which `offer`s it here in frame order; tracking, the second stage after the
tracker, events and sinks run on this stream's delivery thread. The hand-off is bounded:

- a lossless stream (a file, whose queue lane blocks) reserves room for each frame before it
  is queued (`reserve`, on its decoder thread), so a slow sink slows its own decoder and
  nothing else (backpressure);
- a lossy stream (live, whose lane drops) drops its oldest result not yet delivered when
  `capacity` are waiting, and counts it: decoded = processed + dropped + skipped still holds.

A sink that has not returned for `stall_seconds` is given up on (`abandon`): the stream's
results are dropped (counted) from then on and the stream fails; the thread is left behind
(a daemon), so that a sink blocked forever cannot hang the run or its shutdown.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from pipeline.detections import Result

log = logging.getLogger(__name__)


class _Step(enum.Enum):
    ORDERED = "ordered"  # from the in-order release: tracked (if on), then written
    CLASSIFIED = "classified"  # back from the second stage after the tracker: written


class StopFlag(Protocol):
    """What `reserve` waits on besides room: the stream's stop."""

    def is_set(self) -> bool: ...


class ResultDelivery:
    """A stream's delivery thread and its bounded inbox.

    On the thread, one result at a time and in frame order: `deliver(result)` tracks it (if
    tracking is on) and returns the result to write now, or None once it has handed it to the
    second stage (which gives it back through `classified`); `write(result)` hands it to the
    sinks. `on_progress` is called after each result is delivered or dropped (the stream may
    be complete); `on_error(error)` if `deliver` or `write` raises (a bug: the run fails).
    """

    def __init__(
        self,
        name: str,
        *,
        capacity: int,
        lossless: bool,
        deliver: Callable[[Result], Result | None],
        write: Callable[[Result], None],
        on_progress: Callable[[], None],
        on_error: Callable[[BaseException], None],
        stall_seconds: float,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a delivery's capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.lossless = lossless
        self.stall_seconds = stall_seconds
        self._deliver = deliver
        self._write = write
        self._on_progress = on_progress
        self._on_error = on_error
        self._lock = threading.Lock()
        self._has_items = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._inbox: deque[tuple[_Step, Result]] = deque()
        self._pending = 0  # reserved (lossless) or accepted (lossy), not yet written or dropped
        self._closing = False
        self._busy_since: float | None = None  # monotonic time the current result began
        self.delivered = 0  # results written to the sinks
        self.dropped = 0  # results dropped here (a lossy stream's slow sinks, or given up on)
        self.abandoned = False
        self._thread = threading.Thread(target=self._run, name=f"deliver-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- producers ---------------------------------------------------------------------------

    def reserve(self, stop: StopFlag) -> None:
        """Lossless streams, on the decoder thread before queuing a frame: wait for room (or
        the stream's stop, or its abandonment), then count the frame as pending."""
        if not self.lossless:
            return
        with self._lock:
            while self._pending >= self.capacity and not self.abandoned and not stop.is_set():
                self._room.wait(0.25)  # timed: a stop is not signalled here
            self._pending += 1

    def offer(self, result: Result) -> None:
        """Called in frame order (under the stream's in-order release): queue `result` for
        delivery, never blocking the caller (an inference callback). A lossy stream with
        `capacity` results waiting drops the oldest one not yet tracked (else this one)."""
        with self._lock:
            accepted = not self.abandoned and (
                self.lossless or self._pending < self.capacity or self._drop_oldest_waiting()
            )
            if accepted:
                self._pending += not self.lossless
                self._inbox.append((_Step.ORDERED, result))
                self._has_items.notify()
                return
            self.dropped += 1
        self._on_progress()

    def classified(self, result: Result) -> None:
        """A result back from the second stage after the tracker (any thread, frame order)."""
        with self._lock:
            if not self.abandoned:
                self._inbox.append((_Step.CLASSIFIED, result))
                self._has_items.notify()
                return
            self.dropped += 1
        self._on_progress()

    def _drop_oldest_waiting(self) -> bool:
        """Drop the oldest result not yet tracked (under the lock); whether there was one."""
        for index, (step, _) in enumerate(self._inbox):
            if step is _Step.ORDERED:
                del self._inbox[index]
                self.dropped += 1
                self._pending -= 1
                return True
        return False

    # -- the delivery thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._inbox and not self._closing and not self.abandoned:
                    self._has_items.wait()
                if not self._inbox or self.abandoned:
                    return  # closed, or given up on (after a failed run, a stalled sink)
                step, result = self._inbox.popleft()
                self._busy_since = time.monotonic()
            try:
                ready = self._deliver(result) if step is _Step.ORDERED else result
                if ready is not None:
                    self._write(ready)
            except BaseException as error:  # a bug in tracking or the engine: the run fails
                with self._lock:
                    self._busy_since = None
                    self.abandoned = True
                    self.dropped += 1 + len(self._inbox)
                    self._inbox.clear()
                    self._room.notify_all()
                self._on_error(error)
                return
            with self._lock:
                self._busy_since = None
                if self.abandoned:  # given up on while in a sink: it was counted then
                    return
                if ready is not None:
                    self.delivered += 1
                    self._pending -= 1
                    self._room.notify_all()
            self._on_progress()

    # -- the owner (the run thread) ----------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing waits to be delivered and nothing is being delivered."""
        with self._lock:
            return not self._inbox and self._busy_since is None

    def stalled(self, now: float | None = None) -> bool:
        """The current result has been in the sinks for more than `stall_seconds`."""
        since = self._busy_since
        now = time.monotonic() if now is None else now
        return not self.abandoned and since is not None and now - since > self.stall_seconds

    def abandon(self) -> None:
        """Give up on the thread (its sink does not return): drop and count what waits, and
        every result from now on; whoever waits for room stops waiting."""
        with self._lock:
            if self.abandoned:
                return
            self.abandoned = True
            self.dropped += len(self._inbox) + (self._busy_since is not None)
            self._pending = 0
            self._inbox.clear()
            self._room.notify_all()
            self._has_items.notify_all()

    def close(self, timeout: float) -> bool:
        """Let the thread deliver what waits, then end; whether it ended within `timeout`."""
        with self._lock:
            self._closing = True
            self._has_items.notify_all()
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
