"""The state machine of a live stream: connecting, streaming, reconnecting, stopped, failed."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class StreamState(enum.Enum):
    CONNECTING = "connecting"  # first connection attempt
    STREAMING = "streaming"  # frames arrive
    RECONNECTING = "reconnecting"  # lost or never reached: waiting, then trying again
    STOPPED = "stopped"  # asked to stop
    FAILED = "failed"  # gave up (--max-retries)


_LEGAL: dict[StreamState, frozenset[StreamState]] = {
    StreamState.CONNECTING: frozenset(
        {StreamState.STREAMING, StreamState.RECONNECTING, StreamState.STOPPED, StreamState.FAILED}
    ),
    StreamState.STREAMING: frozenset(
        {StreamState.RECONNECTING, StreamState.STOPPED, StreamState.FAILED}
    ),
    StreamState.RECONNECTING: frozenset(
        {StreamState.STREAMING, StreamState.STOPPED, StreamState.FAILED}
    ),
    StreamState.STOPPED: frozenset(),
    StreamState.FAILED: frozenset(),
}


@dataclass(frozen=True)
class StreamStatus:
    """A snapshot: the state, since when (wall clock), reconnections so far, seconds spent
    reconnecting (the current outage included), and the last error, if any."""

    state: StreamState
    since: float
    reconnects: int
    down_seconds: float
    last_error: str = ""


class StreamStateMachine:
    """Tracks one stream's state; thread-safe. Each transition is checked against the legal
    ones and reported to `on_change(status)`; an illegal one raises, naming the current state."""

    def __init__(self, on_change: Callable[[StreamStatus], None] | None = None) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = StreamState.CONNECTING
        self._since = time.time()
        self._reconnects = 0
        self._down = 0.0
        self._error = ""

    @property
    def state(self) -> StreamState:
        return self._state

    def to(self, state: StreamState, error: str = "") -> StreamStatus:
        with self._lock:
            if state not in _LEGAL[self._state]:
                raise RuntimeError(f"stream is {self._state.value}: cannot become {state.value}")
            now = time.time()
            if self._state is StreamState.RECONNECTING:
                self._down += now - self._since
                if state is StreamState.STREAMING:
                    self._reconnects += 1
            self._state, self._since = state, now
            if error:
                self._error = error
            status = self._status(now)
        if self._on_change is not None:
            self._on_change(status)
        return status

    def stop(self) -> None:
        """Become stopped, unless already stopped or failed (a source being released)."""
        if self._state not in (StreamState.STOPPED, StreamState.FAILED):
            self.to(StreamState.STOPPED)

    def status(self) -> StreamStatus:
        with self._lock:
            return self._status(time.time())

    def _status(self, now: float) -> StreamStatus:
        down = self._down
        if self._state is StreamState.RECONNECTING:
            down += now - self._since
        return StreamStatus(self._state, self._since, self._reconnects, down, self._error)
