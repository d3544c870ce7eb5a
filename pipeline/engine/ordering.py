"""Putting results back in frame order per stream, whatever order requests complete in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InOrderRelease(Generic[T]):
    """Holds early arrivals of one stream and releases items by consecutive sequence number.

    `push` may be called from several threads; `emit` is called under the stream's lock, so it
    sees the stream's items one at a time and in order. Pending items are at most the number
    of requests in flight.
    """

    def __init__(self, emit: Callable[[T], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._pending: dict[int, T] = {}
        self._next = 0
        self.released = 0

    def push(self, seq: int, item: T) -> None:
        with self._lock:
            self._pending[seq] = item
            while self._next in self._pending:
                self._emit(self._pending.pop(self._next))
                self._next += 1
                self.released += 1
