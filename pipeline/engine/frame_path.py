"""The per-frame path: prepare (decoder thread), complete (OpenVINO's callback thread),
deliver (to the stream's sinks, in frame order)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline.detections import Result
from pipeline.engine.cascade import Cascade
from pipeline.engine.scheduler import Dispatched, Job
from pipeline.models.adapters import ModelAdapter
from sources import Frame

if TYPE_CHECKING:
    from pipeline.engine.streams import ActiveStream


class FramePath:
    """What happens to each frame between its decoder and its stream's sinks.

    `prepare` runs on the decoder thread (preprocessing off the scheduler thread); `complete`
    on OpenVINO's callback threads, in any order; it hands the result to the stream's in-order
    release, which calls `deliver` in frame order, to the stream's own sinks. `streams` is the
    running streams by name, owned by the stream lifecycle; `wake` is set when a finished
    stream's last result may have been delivered. With a `cascade`, a result goes to the
    release only once its second-stage classifications are in (other frames and streams go on
    meanwhile).
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        streams: Mapping[str, ActiveStream],
        wake: threading.Event,
        cascade: Cascade | None = None,
    ) -> None:
        self.adapter = adapter
        self.cascade = cascade
        self._streams = streams
        self._wake = wake

    def prepare(self, frame: Frame) -> Job:
        tensor, meta = self.adapter.preprocess(frame.image)
        stream = self._streams[frame.stream]
        return Job(frame, tensor, meta, stream.dispatch_seq, stream.service_class)

    def complete(self, outputs: Sequence, dispatched: Dispatched) -> None:
        try:
            job = dispatched.job
            detections = self.adapter.postprocess(outputs, job.meta)
            result = Result(job.frame, detections, time.time())
            if self.cascade is None or not self._streams[job.frame.stream].classify:
                self._release(dispatched.seq, result)
            else:
                release = lambda ready: self._release(dispatched.seq, ready)  # noqa: E731
                self.cascade.process(result, dispatched.seq, release)
        except BaseException:
            self._wake.set()  # the runtime keeps the error: the run loop must see it now
            raise

    def _release(self, seq: int, result: Result) -> None:
        stream = self._streams[result.stream]
        stream.release.push(seq, result)
        if stream.decoder.done:
            self._wake.set()  # this may have been the stream's last result

    def deliver(self, result: Result) -> None:
        """Hand `result` to each of its stream's sinks; a sink that raises fails for this stream
        only (it gets nothing more of it) and the other sinks and streams go on."""
        stream = self._streams[result.stream]
        for index, sink in enumerate(stream.sinks):
            if index in stream.sink_errors:
                continue
            try:
                sink.write(result)
            except Exception as error:
                stream.sink_failed(index, sink, error)
        stream.record(result)
