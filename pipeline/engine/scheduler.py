"""The scheduler thread: takes prepared frames from the fair queue into the request pool."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.engine.frame_queue import FairFrameQueue
from pipeline.engine.service_classes import BatchBound, ServiceClass
from pipeline.models.runtime import InferenceRuntime
from sources.frame import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A frame ready for inference: the model input made in the decoder thread, the
    adapter's metadata for postprocessing, and its stream's dispatch counter and service class
    (the stream's own, so that a stream started again under an earlier one's name counts from
    0 again and has its own class). A job with `skipped` set (motion gating: "no_motion") has
    no tensor: it keeps its place in the stream's order but is not inferred."""

    frame: Frame
    tensor: np.ndarray | None
    meta: Any
    stream_seq: Iterator[int]
    service_class: ServiceClass
    skipped: str | None = None
    motion: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Dispatched:
    """A job in flight; `seq` counts the stream's dispatched jobs, for in-order release."""

    job: Job
    seq: int


class Scheduler(threading.Thread):
    """Dispatches jobs round-robin over streams; does no per-frame work beyond the hand-off.

    With a queue served `by_class`, it first waits for an idle request and only then takes the
    next job, so a live frame that arrives meanwhile is the one dispatched; batch jobs go to
    the runtime's background copy if it has one (see `InferenceRuntime.start_background`),
    are taken only while batch holds fewer requests than `bound` allows (see `_admit_batch`),
    and a request's release wakes the queue to look again. Otherwise it takes jobs round-robin and
    waits in `submit` for a request (the behaviour before service classes). A `skipped` job
    takes no request: it goes to `pass_through` with its sequence number.

    Ends when every lane is closed and empty, or when the runtime reports a failure (then it
    aborts the queue so that the decoders stop too).
    """

    def __init__(
        self,
        frames: FairFrameQueue[Job],
        runtime: InferenceRuntime,
        bound: BatchBound | None = None,
        pass_through: Callable[[Dispatched], None] | None = None,
    ) -> None:
        super().__init__(name="scheduler", daemon=True)
        self._frames = frames
        self._pass_through = pass_through
        self._runtime = runtime
        self.bound = bound or BatchBound(runtime.nireq)
        self.error: BaseException | None = None
        # Set when dispatching is over. Wait on this rather than `join`: a KeyboardInterrupt
        # inside `Thread.join` can leave the thread looking finished while it still runs.
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            by_class = self._frames.by_class
            while True:
                if by_class:
                    self._runtime.wait_for_idle_request()
                job = self._frames.get(self._admit_batch if by_class else None)
                if job is None or self._runtime.failed:
                    break
                seq = next(job.stream_seq)  # only this thread counts
                if job.skipped is not None:
                    assert self._pass_through is not None, "a skipped job needs pass_through"
                    self._pass_through(Dispatched(job, seq))  # in order, not inferred
                    continue
                service_class = job.service_class
                if service_class is ServiceClass.LIVE:
                    self.bound.live_dispatched(time.monotonic())
                else:
                    self.bound.observe(time.monotonic())
                self._runtime.submit(
                    job.tensor,
                    Dispatched(job, seq),
                    service_class,
                    background=service_class is ServiceClass.BATCH,
                )
        except BaseException as error:
            self.error = error
            log.debug("scheduler failed", exc_info=True)
        finally:
            if self.error is not None or self._runtime.failed:
                self._frames.abort()
            self.finished.set()

    def _admit_batch(self) -> bool:
        """Whether batch may take one more request now (asked by the queue under its lock).

        With the runtime's background copy (the CPU), while it has an idle request (within a
        fixed bound, if any): the OS preempts it for live work. Otherwise within the bound,
        and only while the device has an idle execution slot (fewer requests in flight than
        its optimal number): a request submitted to a busy device waits in the device's own
        first-come queue, where a live frame submitted after it cannot overtake it.
        """
        runtime = self._runtime
        if runtime.has_background:
            return runtime.background_in_flight() < self.bound.cap(runtime.background_nireq)
        if runtime.in_flight_total() >= runtime.optimal_nireq:
            return False
        return runtime.in_flight(ServiceClass.BATCH) < self.bound.value(runtime.service_seconds)
