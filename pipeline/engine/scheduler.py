"""The scheduler thread: takes prepared frames from the fair queue into the request pool."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.engine.frame_queue import FairFrameQueue
from pipeline.models.runtime import InferenceRuntime
from sources.frame import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A frame ready for inference: the model input made in the decoder thread, the
    adapter's metadata for postprocessing, and its stream's dispatch counter (owned by the
    stream, so a stream started again under the same name counts from 0 again)."""

    frame: Frame
    tensor: np.ndarray
    meta: Any
    stream_seq: Iterator[int]


@dataclass(frozen=True, slots=True)
class Dispatched:
    """A job in flight; `seq` counts the stream's dispatched jobs, for in-order release."""

    job: Job
    seq: int


class Scheduler(threading.Thread):
    """Dispatches jobs round-robin over streams; does no per-frame work beyond the hand-off.

    Ends when every lane is closed and empty, or when the runtime reports a failure (then it
    aborts the queue so that the decoders stop too).
    """

    def __init__(self, frames: FairFrameQueue[Job], runtime: InferenceRuntime) -> None:
        super().__init__(name="scheduler", daemon=True)
        self._frames = frames
        self._runtime = runtime
        self.error: BaseException | None = None
        # Set when dispatching is over. Wait on this rather than `join`: a KeyboardInterrupt
        # inside `Thread.join` can leave the thread looking finished while it still runs.
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            while (job := self._frames.get()) is not None:
                if self._runtime.failed:
                    break
                self._runtime.submit(job.tensor, Dispatched(job, next(job.stream_seq)))
        except BaseException as error:
            self.error = error
            log.debug("scheduler failed", exc_info=True)
        finally:
            if self.error is not None or self._runtime.failed:
                self._frames.abort()
            self.finished.set()
