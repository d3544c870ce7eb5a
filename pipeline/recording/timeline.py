"""Where an event lies on its camera's recording, and how far the recording has got: the two
times an event clip is cut by. Both are in the recording's own seconds (Unix seconds, as its
segments are named).

A live camera's recording keeps wall time, so an event is when its frame was captured. A file
is analysed (and recorded) faster or slower than real time, so its recording has a timeline of
its own (`CameraRecorder.origin`) and an event is placed on it by its frame's presentation
time: wall-clock times would cut the clip from the wrong part of the file."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipeline.recording.recorder import CameraRecorder

# How long closing a file's clips waits for its recording to reach the end of the file.
FILE_RECORDING_WAIT_S = 60.0


class Stamped(Protocol):
    """A frame or an event: when its picture was captured, and its presentation time."""

    captured_at: float
    pts_ms: float


class RecordingClock(Protocol):
    """One stream's clock for cutting its event clips (a new one each time the stream opens)."""

    def time_of(self, stamped: Stamped) -> float:
        """Where a frame or an event lies on the recording."""
        ...

    def observe(self, frame: Stamped) -> None:
        """The analysis has got to `frame` (a clip is cut only once no later event can still
        join it)."""
        ...

    def now(self) -> float:
        """How far the recording and its analysis have both got."""
        ...

    def settle(self) -> None:
        """Wait until the recording holds all it will (before the last clips are cut)."""
        ...


class LiveClock:
    """A live camera: the recording keeps wall time and the analysis keeps up with it; what
    is recorded when the stream ends is all there is."""

    def time_of(self, stamped: Stamped) -> float:
        return stamped.captured_at

    def observe(self, frame: Stamped) -> None:
        return None

    def now(self) -> float:
        return time.time()

    def settle(self) -> None:
        return None


class FileClock:
    """A recorded file: media time t from the file's start lies at the recorder's origin + t.
    The recording runs ahead of the analysis (it only demuxes), so the clock is at the older
    of the newest packet recorded and the newest frame analysed."""

    def __init__(self, recorder: CameraRecorder, origin: float) -> None:
        self.recorder = recorder
        self._origin = origin
        self._analysed = float("-inf")  # written by the delivery thread, read by the cutter

    def time_of(self, stamped: Stamped) -> float:
        return self._origin + stamped.pts_ms / 1000.0

    def observe(self, frame: Stamped) -> None:
        self._analysed = self.time_of(frame)

    def now(self) -> float:
        return min(self.recorder.recorded_until, self._analysed)

    def settle(self) -> None:
        self.recorder.join(FILE_RECORDING_WAIT_S)


def clock_of(recorder: CameraRecorder | None) -> RecordingClock:
    """A clock for the stream `recorder` records (a file's own timeline, or wall time)."""
    if recorder is not None and recorder.origin is not None:
        return FileClock(recorder, recorder.origin)
    return LiveClock()
