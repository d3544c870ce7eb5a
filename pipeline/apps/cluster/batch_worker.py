"""A batch worker: one Ray actor per node, owning one compiled model, running the engine over
files it pulls from the job's queue whenever it has room for one more."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.analytics import AnalyticsOptions, Event
from pipeline.apps.batch.files import BatchFile, OutputLayout
from pipeline.apps.batch.job import batch_sinks, file_sources
from pipeline.apps.cluster.file_queue import NO_PROGRESS, add_progress
from pipeline.detections import Result
from pipeline.engine.pipeline import Pipeline
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.sinks import EventSink, Sink, StreamInfo
from pipeline.outputs.sinks.jsonl import PARTIAL_SUFFIX
from pipeline.summary import Progress, StreamOutcome, StreamSummary

log = logging.getLogger(__name__)


def keep_to_cores(cores: tuple[int, ...]) -> bool:
    """Keep every thread of this process (and those it starts later) to `cores`, if this
    process may run on them all; whether it did."""
    if not set(cores) <= os.sched_getaffinity(0):
        return False
    for task in os.listdir("/proc/self/task"):  # Ray's threads too: they start our threads
        with contextlib.suppress(OSError):  # one that just ended
            os.sched_setaffinity(int(task), cores)
    return True


def load_detector(
    model: str, threads: int | None, options: DetectorOptions, cores: tuple[int, ...] | None = None
) -> tuple[Any, Any]:
    """The worker's compiled model and its OpenVINO core (the pipeline compiles the second
    stage of `options`, if any, with the same core); inference limited to `threads` CPU
    threads (the node's declared CPUs) when given, so nodes sharing a machine do not
    oversubscribe it. With `cores` (see `shared_machine_cores`), the process keeps to them.

    A process that may run on more cores than `threads` shares them with other nodes (or other
    work): its inference threads are then not pinned to cores. OpenVINO pins each process's
    streams from core 0 on, so two 1-CPU nodes on one machine had both their inference threads
    pinned to core 0 (seen in /proc/PID/task/*/status: Cpus_allowed_list 0), half the
    machine idle."""
    import cv2
    import openvino as ov

    from pipeline.models.detector import Detector

    cv2.setNumThreads(1)  # as the CLI: decoders already run in parallel, one per stream
    if cores is not None and not keep_to_cores(cores):
        log.warning("cores %s are not all available here: not keeping to them", cores)
    core = ov.Core()
    if threads:
        shared = threads < len(os.sched_getaffinity(0))
        core.set_property(
            "CPU", {"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": not shared}
        )
    return Detector.open(model, options, core), core


class CommitFence:
    """Wraps a sink: a finished file is renamed to its final name only if the queue still
    says this worker holds it (a worker declared lost may linger; its files are redone)."""

    def __init__(self, sink: Sink, may_commit: Any) -> None:
        self._sink = sink
        self._may_commit = may_commit

    def open(self, stream: StreamInfo) -> None:
        self._sink.open(stream)

    def write(self, result: Result) -> None:
        self._sink.write(result)

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        if isinstance(self._sink, EventSink):  # the events sink (tracking on)
            self._sink.write_events(stream, events)

    def finish(self, stream: StreamSummary) -> None:
        if stream.status == StreamOutcome.DONE and not self._may_commit(stream.name):
            # leave it under .part
            stream = dataclasses.replace(stream, status=StreamOutcome.STOPPED)
        self._sink.finish(stream)

    def close(self) -> None:
        self._sink.close()


def _clear_partial(layout: OutputLayout, file: BatchFile) -> None:
    """Remove a lost attempt's partial results, so this attempt writes new files (a lingering
    writer of the old ones then writes to files no name points at)."""
    for done in [layout.jsonl(file)] + ([layout.events_jsonl(file)] if layout.events else []):
        done.with_name(done.name + PARTIAL_SUFFIX).unlink(missing_ok=True)
    if layout.save_video:
        video = layout.video(file)
        video.with_name(f"{video.stem}.part{video.suffix}").unlink(missing_ok=True)


class BatchWorker:
    """Made a Ray actor by the job (`max_concurrency=2`: `stop` comes while `run` runs)."""

    def __init__(
        self,
        model: str,
        layout: OutputLayout,
        node: str,
        concurrency: int | None,
        threads: int | None,
        detector_options: DetectorOptions,
        analytics: AnalyticsOptions | None = None,
        cores: tuple[int, ...] | None = None,
    ) -> None:
        logging.basicConfig(level=logging.WARNING, format="vapipe worker: %(message)s")
        self.layout = layout
        self.analytics = analytics
        self.node = node
        self.concurrency = concurrency
        self.detector_options = detector_options  # the second stage's too: the pipeline's
        self.detector, self.core = load_detector(model, threads, detector_options, cores)
        self._pipeline: Pipeline | None = None
        self._done = NO_PROGRESS  # progress of earlier runs

    def ready(self) -> str:
        return self.node

    def run(self, queue: Any, worker: str) -> int:
        """Process files from `queue` until it has none left for us; the frames processed."""
        import ray

        def pull() -> Iterator[BatchFile]:
            while (queued := ray.get(queue.next_file.remote(worker))) is not None:
                file = BatchFile(Path(queued.path), queued.key)
                _clear_partial(self.layout, file)
                yield file

        def may_commit(key: str) -> bool:
            return ray.get(queue.may_commit.remote(worker, key))

        def tick(progress: Progress) -> None:
            queue.progress.remote(worker, add_progress(self._done, progress))

        reports = []  # not waited for one by one: the file's next stream starts at once

        def ended(summary: StreamSummary) -> None:
            reports.append(queue.file_ended.remote(worker, self.node, summary))

        sinks = [CommitFence(sink, may_commit) for sink in batch_sinks(self.layout)]
        with Pipeline(
            file_sources(pull()), self.detector, sinks=sinks, concurrency=self.concurrency,
            analytics=self.analytics, detector_options=self.detector_options, core=self.core,
        ) as pipeline:  # fmt: skip
            self._pipeline = pipeline
            summary = pipeline.run(on_tick=tick, on_stream_end=ended)
            self._pipeline = None
            self._done = add_progress(
                self._done, dataclasses.replace(pipeline.progress(), streams_active=0)
            )
        tick(NO_PROGRESS)
        ray.get(reports)  # all in the queue before the driver sees this run end
        return summary.total_frames

    def stop(self) -> None:
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def close(self) -> None:
        self.detector.close()
