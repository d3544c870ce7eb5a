"""One bounded frame queue with a lane per stream, served round-robin.

Each stream owns a lane of fixed capacity, so memory is bounded by streams x capacity whatever
the streams' lengths, and `get` takes one item from each non-empty lane in turn, so a fast or
long stream cannot make the others wait behind its backlog. With `by_class`, lanes of live
streams are served before those of batch streams (round-robin within each class), and batch
lanes hold a single frame while live frames wait.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from pipeline.engine.service_classes import ServiceClass

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by a frame queue's `put` once nothing will consume the item any more."""


class QueuePolicy(enum.Enum):
    """What a decoder does when its stream's queue lane is full."""

    BLOCK = "block"  # wait: lossless, for files
    DROP_OLDEST = "drop-oldest"  # drop the oldest queued frame and count it, for live streams

    @classmethod
    def for_source(cls, live: bool) -> QueuePolicy:
        """Files wait (nothing lost); live streams drop their oldest frame (latency bounded)."""
        return cls.DROP_OLDEST if live else cls.BLOCK


class _Lane(Generic[T]):
    __slots__ = ("closed", "items", "policy", "room", "service_class")

    def __init__(
        self, policy: QueuePolicy, service_class: ServiceClass, lock: threading.Lock
    ) -> None:
        self.items: deque[T] = deque()
        self.policy = policy
        self.service_class = service_class
        self.closed = False
        self.room = threading.Condition(lock)  # signalled when an item leaves this lane


class FairFrameQueue(Generic[T]):
    """Bounded multi-producer, single-consumer queue with per-stream lanes."""

    def __init__(self, lane_capacity: int, by_class: bool = False) -> None:
        if lane_capacity < 1:
            raise ValueError(f"lane_capacity must be >= 1, got {lane_capacity}")
        self.lane_capacity = lane_capacity
        self.by_class = by_class
        self._lanes: dict[str, _Lane[T]] = {}
        # Streams with queued items, in serving order: one round-robin per class with
        # `by_class`, else one for all (under the live key).
        self._ready: dict[ServiceClass, deque[str]] = {c: deque() for c in ServiceClass}
        self._live_lanes = 0
        self._lock = threading.Lock()
        self._has_items = threading.Condition(self._lock)  # the consumer waits on this
        self._aborted = False
        self._sealed = False  # no lane will be added any more

    def add_lane(
        self, stream: str, policy: QueuePolicy, service_class: ServiceClass = ServiceClass.LIVE
    ) -> None:
        with self._lock:
            if stream in self._lanes:
                raise ValueError(f"stream {stream!r} already has a lane")
            self._lanes[stream] = _Lane(policy, service_class, self._lock)
            self._live_lanes += service_class is ServiceClass.LIVE

    def service_class(self, stream: str) -> ServiceClass:
        with self._lock:
            return self._lanes[stream].service_class

    @property
    def has_live_lanes(self) -> bool:
        """Whether some live stream has a lane (is running)."""
        with self._lock:
            return self._live_lanes > 0

    def put(self, stream: str, item: T) -> T | None:
        """Queue `item`; return the item dropped to make room (drop-oldest policy), else None.

        With the block policy this waits for room. Raises QueueClosed after `abort`.
        """
        with self._lock:
            lane = self._lanes[stream]
            dropped = None
            while len(lane.items) >= self._capacity(lane) and not self._aborted:
                if lane.policy is QueuePolicy.DROP_OLDEST:
                    dropped = lane.items.popleft()
                    break
                lane.room.wait()
            if self._aborted:
                raise QueueClosed(stream)
            if not lane.items and dropped is None:  # with one slot, a drop leaves it empty
                self._ready[self._ready_key(lane)].append(stream)  # but it is listed already
            lane.items.append(item)
            self._has_items.notify()
            return dropped

    def close_lane(self, stream: str) -> None:
        """Mark the end of a stream: no more puts follow."""
        with self._lock:
            self._lanes[stream].closed = True
            self._has_items.notify()

    def remove_lane(self, stream: str) -> None:
        """Forget a closed, empty lane (a finished stream)."""
        with self._lock:
            lane = self._lanes[stream]
            if not lane.closed or lane.items:
                raise ValueError(f"stream {stream!r}: only a closed, empty lane can be removed")
            del self._lanes[stream]
            self._live_lanes -= lane.service_class is ServiceClass.LIVE
            self._has_items.notify()

    def seal(self) -> None:
        """No lane will be added any more: `get` ends once the existing lanes are done."""
        with self._lock:
            self._sealed = True
            self._has_items.notify()

    def get(self, admit_batch: Callable[[], bool] | None = None) -> T | None:
        """Next item, round-robin over streams (with `by_class`, live streams first).

        With `by_class`, while some live stream has a lane, a batch item is taken only if
        `admit_batch()` says so (asked under the queue's lock, whenever the consumer looks:
        it must not call the queue); call `wake` when its answer may have changed. None once
        the queue is sealed and every lane is closed and empty, or after `abort`.
        """
        with self._lock:
            while (ready := self._next_ready(admit_batch)) is None or self._aborted:
                if self._aborted or (
                    self._sealed and all(lane.closed for lane in self._lanes.values())
                ):
                    return None
                self._has_items.wait()
            stream = ready.popleft()
            lane = self._lanes[stream]
            item = lane.items.popleft()
            if lane.items:
                ready.append(stream)
            lane.room.notify()
            return item

    def wake(self) -> None:
        """Make a waiting `get` look again (whether batch is admitted may have changed)."""
        with self._lock:
            self._has_items.notify()

    def _ready_key(self, lane: _Lane[T]) -> ServiceClass:
        return lane.service_class if self.by_class else ServiceClass.LIVE

    def _next_ready(self, admit_batch: Callable[[], bool] | None) -> deque[str] | None:
        """The round-robin to serve next, if one has items and may be served."""
        if self._ready[ServiceClass.LIVE]:
            return self._ready[ServiceClass.LIVE]
        batch = self._ready[ServiceClass.BATCH]
        if batch and (admit_batch is None or not self._live_lanes or admit_batch()):
            return batch
        return None

    def _capacity(self, lane: _Lane[T]) -> int:
        """A batch lane holds one frame while live frames wait (`by_class`): its decoder then
        waits, leaving the CPU and memory to live streams."""
        batch = self.by_class and lane.service_class is ServiceClass.BATCH
        if batch and self._ready[ServiceClass.LIVE]:
            return 1
        return self.lane_capacity

    def abort(self) -> None:
        """Wake everyone: producers get QueueClosed, the consumer gets None."""
        with self._lock:
            self._aborted = True
            self._has_items.notify_all()
            for lane in self._lanes.values():
                lane.room.notify_all()

    def depth(self, stream: str) -> int:
        with self._lock:
            return len(self._lanes[stream].items)
