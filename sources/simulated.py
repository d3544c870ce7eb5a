"""A video file standing in for a camera: read at its own frame rate, and/or looped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from sources.base import VideoSource
from sources.errors import SourceError
from sources.file import FileSource

# A realtime file that falls this far behind its own clock (the machine was busy) starts its
# clock again from now, as a camera would: it never sends a backlog of old frames.
_RESYNC_SECONDS = 1.0


class SimulatedCamera:
    """Wraps a `FileSource`: with `realtime`, `grab` (or `read`) returns each frame no sooner
    than its presentation time after the first (as a camera delivers them), and the stream is live
    (drop-oldest: the queue never holds stale frames); with `loop`, the file starts again at
    its end, its timestamps carrying on. `interrupt` ends a wait at once.

    `pts_ms` keeps increasing across loops (each pass is offset by the file's duration); frame
    numbers are the decoder's, as for any source.
    """

    def __init__(
        self,
        file: FileSource,
        *,
        realtime: bool = False,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._file = file
        self.realtime = realtime
        self.loop = loop
        self._clock = clock
        self._interrupted = threading.Event()
        self._started_at: float | None = None  # the clock at pts 0 of the current timeline
        self._offset_ms = 0.0  # added to the file's pts: the earlier passes' duration
        self._last_pts_ms = 0.0
        self.loops = 0  # passes completed

    # Identity and properties come from the file.
    @property
    def name(self) -> str:
        return self._file.name

    @name.setter
    def name(self, value: str) -> None:
        self._file.name = value

    @property
    def uri(self) -> str:
        return self._file.uri

    @property
    def live(self) -> bool:
        """A realtime file is a live stream: latency first, frames never wait."""
        return self.realtime

    @property
    def size(self) -> tuple[int, int]:
        return self._file.size

    @property
    def fps(self) -> float:
        return self._file.fps

    @property
    def declared_frames(self) -> int:
        return 0 if self.loop else self._file.declared_frames

    # -- VideoSource -------------------------------------------------------------------------

    def open(self) -> None:
        self._file.open()

    def read(self) -> tuple[np.ndarray, float] | None:
        pts_ms = self.grab()
        return None if pts_ms is None else (self.retrieve(), pts_ms)

    def grab(self) -> float | None:
        """The next frame, decoded but not converted (a `GrabbingSource`, as the file is)."""
        if self._interrupted.is_set():
            return None
        pts_ms = self._file.grab()
        if pts_ms is None and self.loop:
            pts_ms = self._restart()
        if pts_ms is None:
            return None
        pts_ms += self._offset_ms
        self._last_pts_ms = pts_ms
        if self.realtime and not self._wait_until(pts_ms):
            return None
        return pts_ms

    @property
    def discarded(self) -> bool:
        """As the file's: the frame last grabbed was left out undecoded."""
        return self._file.discarded

    def retrieve(self) -> np.ndarray:
        return self._file.retrieve()

    def release(self) -> None:
        self._file.release()

    def interrupt(self) -> None:
        self._interrupted.set()

    # -- helpers -----------------------------------------------------------------------------

    def _restart(self) -> float:
        """Open the file again from its start and grab its first frame; the next pass's pts
        follow the last frame's."""
        period_ms = 1000.0 / self.fps if self.fps > 0 else 40.0
        self._file.release()
        self._file.open()
        self._offset_ms = self._last_pts_ms + period_ms
        self.loops += 1
        pts_ms = self._file.grab()
        if pts_ms is None:
            raise SourceError(f"{self.uri}: no frame on reopening to loop")
        return pts_ms

    def _wait_until(self, pts_ms: float) -> bool:
        """Sleep until the frame's time on this source's clock; False if interrupted."""
        now = self._clock()
        if self._started_at is None or now - (self._started_at + pts_ms / 1000) > _RESYNC_SECONDS:
            self._started_at = now - pts_ms / 1000
        delay = self._started_at + pts_ms / 1000 - now
        return not (delay > 0 and self._interrupted.wait(delay))


def simulate(source: VideoSource, *, realtime: bool = False, loop: bool = False) -> VideoSource:
    """`source` as a simulated camera when asked (`realtime`, `loop`); files only: a live
    source is returned as it is (it already runs in real time and never ends)."""
    if not (realtime or loop) or not isinstance(source, FileSource):
        return source
    return SimulatedCamera(source, realtime=realtime, loop=loop)
