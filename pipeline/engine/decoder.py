"""The decoder thread: one per source, reading frames into the shared frame queue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import numpy as np

from pipeline.engine.frame_queue import QueueClosed
from pipeline.thread_priority import lower_this_thread
from sources import Frame, FrameSampler, VideoSource
from sources.base import GrabbingSource
from sources.errors import VapipeError, mask_credentials

log = logging.getLogger(__name__)

T = TypeVar("T")


class StopFlag(Protocol):
    """Tells a decoder to stop (a `threading.Event`, or a stream's own stop)."""

    def is_set(self) -> bool: ...


class FrameQueue(Protocol[T]):
    def put(self, stream: str, item: T) -> T | None: ...

    def close_lane(self, stream: str) -> None: ...


def _nothing(*_: object) -> None:
    pass


class DecoderThread(threading.Thread, Generic[T]):
    """Reads `source` until it ends, fails or `stop` is set.

    With `open_source` the thread opens the source itself (a failure to open is then this
    stream's failure, not the caller's); otherwise it must already be open. `on_started` is
    called with the first frame in hand (a live source's size is known only then), before it
    is queued. `sampler`, if any, picks the frames to analyse; the others count as skipped.
    The decision is made before the frame is converted: a `GrabbingSource` is grabbed for every
    frame and retrieved only for those analysed (other sources are `read` in full); a frame it
    cannot retrieve counts as dropped. A frame the source left out undecoded (its `discarded`
    attribute, see `GrabbingSource`) counts as skipped without asking `sampler`; one it lost
    before decoding (its `lost` attribute: a `PacketSource` behind its feed) as dropped.
    Each analysed frame is turned into a queue item by `prepare` (preprocessing runs here, off
    the scheduler thread) and put on the stream's lane. The lane is closed in `finally`, so the
    consumer always learns that the stream ended; `on_ended` is called last, when `done` is true.
    Accounting, once done: decoded = queued (each gives one result) + dropped + skipped.
    With `low_priority` the thread runs at the lowest OS priority (nice 19; on Linux nice is
    per thread, and FFmpeg threads it starts inherit it): decoding and preprocessing a batch
    stream then takes only the CPU that live streams and inference leave.
    """

    def __init__(
        self,
        source: VideoSource,
        frames: FrameQueue[T],
        prepare: Callable[[Frame], T],
        stop: StopFlag,
        *,
        open_source: bool = False,
        on_started: Callable[[VideoSource], None] = _nothing,
        on_ended: Callable[[], None] = _nothing,
        sampler: FrameSampler | None = None,
        low_priority: bool = False,
    ) -> None:
        super().__init__(name=f"decoder-{source.name}", daemon=True)
        self.source = source
        self._frames = frames
        self._prepare = prepare
        self._stop_requested = stop
        self._open_source = open_source
        self._on_started = on_started
        self._on_ended = on_ended
        self._sampler = sampler
        self._low_priority = low_priority
        self.decoded = 0
        self.dropped = 0
        self.skipped = 0
        self.error: str | None = None
        self.reached_end = False  # the source ended by itself (not stopped, not failed)
        self.done = False  # the thread has finished with the source and closed its lane
        self.started_at = 0.0

    @property
    def dispatchable(self) -> int:
        """Frames that were queued and not dropped: each gives one result once `done`."""
        return self.decoded - self.dropped - self.skipped

    def _grab(self) -> tuple[float | None, None]:
        """The next frame's pts, its image left unconverted until it is chosen."""
        return self.source.grab(), None  # type: ignore[attr-defined]

    def _read(self) -> tuple[float | None, np.ndarray | None]:
        packet = self.source.read()
        return (None, None) if packet is None else (packet[1], packet[0])

    def run(self) -> None:
        name = self.source.name
        self.started_at = time.time()
        if self._low_priority and not lower_this_thread():
            log.debug("stream %s: cannot lower the decoder's priority; it runs as is", name)
        try:
            if self._open_source:
                self.source.open()
            grabbing = isinstance(self.source, GrabbingSource)
            started = False
            while not self._stop_requested.is_set():
                pts_ms, image = self._grab() if grabbing else self._read()
                if pts_ms is None:
                    self.reached_end = not self._stop_requested.is_set()
                    break
                captured_at, now = time.time(), time.monotonic()
                if grabbing and getattr(self.source, "lost", False):
                    self.decoded += 1  # left out before decoding, by the live policy
                    self.dropped += 1
                    continue
                if not started:
                    started = True
                    self._on_started(self.source)
                index = self.decoded
                if (grabbing and getattr(self.source, "discarded", False)) or (
                    self._sampler is not None and not self._sampler.accept(now)
                ):
                    self.decoded += 1
                    self.skipped += 1
                    continue
                if image is None:
                    image = self.source.retrieve()  # type: ignore[attr-defined]
                self.decoded += 1
                if image is None:  # that frame could not be converted; the source goes on
                    self.dropped += 1
                    continue
                frame = Frame(name, index, pts_ms, captured_at, image)
                if self._frames.put(name, self._prepare(frame)) is not None:
                    self.dropped += 1
        except QueueClosed:
            self.dropped += 1  # the frame in hand: the pipeline is aborting
        except VapipeError as error:
            self.error = str(error)
            log.error("stream %s failed: %s", name, error)
        except Exception as error:  # a bug, not a user mistake: keep the traceback in the log
            self.error = f"{type(error).__name__}: {error}"
            log.exception("stream %s (%s) failed", name, mask_credentials(self.source.uri))
        finally:
            self.source.release()
            self._frames.close_lane(name)
            self.done = True
            self._on_ended()
