"""One bounded frame queue with a lane per stream, served round-robin.

Each stream owns a lane of fixed capacity, so memory is bounded by streams x capacity whatever
the streams' lengths, and `get` takes one item from each non-empty lane in turn, so a fast or
long stream cannot make the others wait behind its backlog.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from typing import Generic, TypeVar

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
    __slots__ = ("closed", "items", "policy", "room")

    def __init__(self, policy: QueuePolicy, lock: threading.Lock) -> None:
        self.items: deque[T] = deque()
        self.policy = policy
        self.closed = False
        self.room = threading.Condition(lock)  # signalled when an item leaves this lane


class FairFrameQueue(Generic[T]):
    """Bounded multi-producer, single-consumer queue with per-stream lanes."""

    def __init__(self, lane_capacity: int) -> None:
        if lane_capacity < 1:
            raise ValueError(f"lane_capacity must be >= 1, got {lane_capacity}")
        self.lane_capacity = lane_capacity
        self._lanes: dict[str, _Lane[T]] = {}
        self._ready: deque[str] = deque()  # streams with queued items, in serving order
        self._lock = threading.Lock()
        self._has_items = threading.Condition(self._lock)  # the consumer waits on this
        self._aborted = False
        self._sealed = False  # no lane will be added any more

    def add_lane(self, stream: str, policy: QueuePolicy) -> None:
        with self._lock:
            if stream in self._lanes:
                raise ValueError(f"stream {stream!r} already has a lane")
            self._lanes[stream] = _Lane(policy, self._lock)

    def put(self, stream: str, item: T) -> T | None:
        """Queue `item`; return the item dropped to make room (drop-oldest policy), else None.

        With the block policy this waits for room. Raises QueueClosed after `abort`.
        """
        with self._lock:
            lane = self._lanes[stream]
            dropped = None
            while len(lane.items) >= self.lane_capacity and not self._aborted:
                if lane.policy is QueuePolicy.DROP_OLDEST:
                    dropped = lane.items.popleft()
                    break
                lane.room.wait()
            if self._aborted:
                raise QueueClosed(stream)
            if not lane.items and dropped is None:  # with one slot, a drop leaves it empty
                self._ready.append(stream)  # but the stream is in `_ready` already
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
            self._has_items.notify()

    def seal(self) -> None:
        """No lane will be added any more: `get` ends once the existing lanes are done."""
        with self._lock:
            self._sealed = True
            self._has_items.notify()

    def get(self) -> T | None:
        """Next item, round-robin over streams.

        None once the queue is sealed and every lane is closed and empty, or after `abort`.
        """
        with self._lock:
            while not self._ready or self._aborted:
                if self._aborted or (
                    self._sealed and all(lane.closed for lane in self._lanes.values())
                ):
                    return None
                self._has_items.wait()
            stream = self._ready.popleft()
            lane = self._lanes[stream]
            item = lane.items.popleft()
            if lane.items:
                self._ready.append(stream)
            lane.room.notify()
            return item

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
