"""Headless batch processing of video folders: every file analysed once, resumably."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.analytics import AnalyticsOptions
from pipeline.apps.batch.files import BatchFile, OutputLayout, find_videos
from pipeline.apps.batch.report import BatchReport, FileReport, previous_reports
from pipeline.engine.feeds import Feed
from pipeline.engine.motion_options import MotionOptions
from pipeline.engine.pipeline import Pipeline, Progress
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.sinks import AnnotatedVideoSink, EventsJsonlSink, JsonlSink, Sink
from pipeline.outputs.sinks.jsonl import PARTIAL_SUFFIX
from pipeline.summary import StreamSummary
from sources import FileSource, SourceError

log = logging.getLogger(__name__)

REPORT_SECONDS = 2.0  # the report is rewritten at most this often while files end


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch job stands: its files (all found, to process in this run, ended so far,
    of which failed), the frame progress of this run, and whether it is over (report
    written)."""

    files: int
    to_process: int
    ended: int
    failed: int
    frames: Progress
    over: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class BatchJob:
    """Analyses every video under some folders, several files at once as concurrent streams.

    The next file starts as soon as one ends, so the device never idles between files. Results
    mirror the input tree (`OUT/<relative path>/<stem>.jsonl`, and with `save_video` an
    annotated copy beside it); each is written under a temporary name and renamed once the
    file is complete, so a file is skipped on the next run exactly when its results are
    complete (`force` processes everything again). A file that fails is reported and the
    others go on. `concurrency` defaults to the request-pool size: each request can then
    serve a different file, and a file opening does not leave the device idle. With
    `analytics`, each file is tracked and its events written to `<stem>.events.jsonl`; with
    `motion`, frames without motion are not inferred (see `StreamOptions.motion`).

        job = BatchJob(["recordings"], "yolo11n_openvino_model", "out")
        report = job.run(on_file=lambda f: print(f.file, f.status))

    `start(pipeline)` runs the job instead inside a pipeline that analyses other streams (live
    cameras), as a feed at batch class: its files then take the requests the live streams
    leave idle; `progress`, `stop` (resumable) and `wait` follow it from any thread, and the
    report is written when it is over. `model` is then unused (the pipeline's serves).
    """

    def __init__(
        self,
        inputs: Sequence[str | Path],
        model: str | Path | None,
        out: str | Path,
        *,
        patterns: Sequence[str] = (),
        concurrency: int | None = None,
        force: bool = False,
        save_video: bool = False,
        analytics: AnalyticsOptions | None = None,
        motion: MotionOptions | None = None,
        detector_options: DetectorOptions | None = None,
    ) -> None:
        self.motion = motion
        self.layout = OutputLayout(Path(out), save_video, events=analytics is not None)
        self.analytics = analytics
        self.files = find_videos(inputs, patterns, exclude=self.layout.root)
        if not self.files:
            where = ", ".join(map(str, inputs))
            raise SourceError(f"no video files under {where}; check the folder or --glob")
        self.force = force
        self.concurrency = concurrency
        self.detector_options = detector_options or DetectorOptions()
        self._model = model
        self._pipeline: Pipeline | None = None  # its own, while `run` runs
        self._feed: Feed | None = None  # its feed in another pipeline, after `start`
        self._todo: list[BatchFile] = []
        self._reports: dict[Path, FileReport] = {}
        self._by_source: dict[str, BatchFile] = {}
        self._by_key: dict[str, BatchFile] = {}
        self._emit: Callable[[FileReport], None] = lambda report: None
        self._started = 0.0
        self._over = threading.Event()
        self.report: BatchReport | None = None  # once over
        self._stopped = False  # `stop` was called, perhaps before the pipeline existed
        self._last_written = 0.0  # when the report was last rewritten (monotonic)

    def pending(self) -> list[BatchFile]:
        """The files this run will process: all with `force`, else those not complete."""
        if self.force:
            return list(self.files)
        return [f for f in self.files if not self.layout.is_complete(f)]

    def run(
        self,
        on_file: Callable[[FileReport], None] | None = None,
        on_tick: Callable[[Progress, int, int], None] | None = None,
    ) -> BatchReport:
        """Process the pending files; returns the report, also written to `OUT/report.*`.

        `on_file` gets each file's report as it ends (skipped files first); `on_tick` gets the
        frame progress, files ended and files to process, twice a second. Ctrl-C stops cleanly:
        files in progress are reported `stopped` and processed again next time. The report is
        also rewritten as files end (at most every `REPORT_SECONDS`), so that it is current
        if the job is killed.
        """
        if self._model is None:
            raise ValueError("BatchJob.run needs a model (or use start(pipeline))")
        todo = self._begin(on_file)
        interrupted, frames, fps = False, 0, 0.0
        if todo:
            tick = None
            if on_tick is not None:
                tick = lambda progress: on_tick(progress, self._ended(), len(todo))  # noqa: E731
            interrupted, frames, fps = self._process(todo, self._file_ended, tick)
        return self._finish(interrupted, frames, fps)

    def _process(
        self,
        todo: Sequence[BatchFile],
        file_ended: Callable[[StreamSummary], None],
        on_tick: Callable[[Progress], None] | None,
    ) -> tuple[bool, int, float]:
        """Run the files through the engine; (interrupted, frames, fps). A cluster job
        (pipeline.apps.cluster) processes them elsewhere instead."""
        with self._make_pipeline(todo) as pipeline:
            self._pipeline = pipeline
            if self._stopped:  # asked while the model was loading
                pipeline.stop()
            summary = pipeline.run(on_tick=on_tick, on_stream_end=file_ended)
            self._pipeline = None
        return summary.interrupted, summary.total_frames, summary.total_fps

    def start(
        self, pipeline: Pipeline, on_file: Callable[[FileReport], None] | None = None
    ) -> None:
        """Process the pending files inside `pipeline` (running, or about to run) beside its
        other streams, at batch class, `concurrency` files at once (default: its request-pool
        size). Returns at once; the report is written when every file has ended, when `stop`
        is called, or when the pipeline's run ends (files not reached are `pending`)."""
        if self._started:
            raise RuntimeError("a BatchJob runs once; make a new one")
        todo = self._begin(on_file)
        self._feed = pipeline.add_feed(
            file_sources(todo), sinks=batch_sinks(self.layout), concurrency=self.concurrency,
            service_class=ServiceClass.BATCH, on_stream_end=self._file_ended,
            on_done=self._feed_done,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop starting files and stop those in progress (they are reported `stopped` and
        processed again by the next run over the same output folder); any thread, also
        before `run` has loaded the model."""
        self._stopped = True
        if self._pipeline is not None:
            self._pipeline.stop()
        if self._feed is not None:
            self._feed.stop()

    def wait(self, timeout: float | None = None) -> BatchReport | None:
        """The report once the job is over (waiting up to `timeout`), else None."""
        self._over.wait(timeout)
        return self.report

    def progress(self) -> BatchProgress:
        if self._feed is not None:
            frames = self._feed.progress()
        elif self._pipeline is not None:
            frames = self._pipeline.progress()
        else:
            frames = Progress(0, 0, 0, 0)
        reports = list(self._reports.values())
        return BatchProgress(
            files=len(self.files), to_process=len(self._todo), ended=self._ended(),
            failed=sum(1 for r in reports if r.status == "failed"), frames=frames,
            over=self._over.is_set(),
        )  # fmt: skip

    def _begin(self, on_file: Callable[[FileReport], None] | None) -> list[BatchFile]:
        """Find what to do, report the files complete already; the files to process."""
        self._started = time.time()
        self._todo = todo = self.pending()
        log.info(
            "%d video files, %d to process, %d complete already%s", len(self.files), len(todo),
            len(self.files) - len(todo), " (force: processing all)" if self.force else "",
        )  # fmt: skip
        self._emit = on_file or (lambda report: None)
        earlier = previous_reports(self.layout.root)
        todo_set = set(todo)
        for file in self.files:
            if file not in todo_set:
                self._reports[file.path] = self._skipped(file, earlier.get(file.relative))
                self._emit(self._reports[file.path])
        # By path: a file's stream may be renamed if another stream of the pipeline has its name
        self._by_source = {str(file.path): file for file in todo}
        self._by_key = {file.key: file for file in todo}
        self.layout.root.mkdir(parents=True, exist_ok=True)
        return todo

    def _file_ended(self, stream: StreamSummary) -> None:
        # By path (a stream may be renamed beside others), else by name (a cluster's workers)
        file = self._by_source.get(stream.source) or self._by_key[stream.name]
        self._reports[file.path] = self._file_report(file, stream)
        self._emit(self._reports[file.path])
        if time.monotonic() - self._last_written >= REPORT_SECONDS:
            self._report().write(self.layout.root)
            self._last_written = time.monotonic()

    def _ended(self) -> int:
        """Files of this run that have ended."""
        return len(self._reports) - (len(self.files) - len(self._todo))

    def _feed_done(self, feed: Feed) -> None:
        frames = sum(s.frames_processed for s in feed.ended)
        wall = time.time() - self._started
        interrupted = feed.stopped or len(feed.ended) < len(self._todo)
        self._finish(interrupted, frames, round(frames / wall, 2) if wall > 0 else 0.0)

    def _finish(self, interrupted: bool, frames: int, fps: float) -> BatchReport:
        """Write the final report (files not reached are `pending`)."""
        report = self._report(frames, fps, interrupted)
        self.layout.root.mkdir(parents=True, exist_ok=True)
        report.write(self.layout.root)
        self.report = report
        self._over.set()
        return report

    def _report(
        self, frames: int | None = None, fps: float = 0.0, interrupted: bool = False
    ) -> BatchReport:
        """The report so far: files not reported yet are `pending`; `frames` defaults to
        those of the files ended in this run."""
        rows = {file.path: FileReport(file.relative, "pending") for file in self._todo}
        rows |= self._reports
        if frames is None:
            frames = sum(rows[file.path].frames for file in self._todo)
        return BatchReport(
            files=[rows[file.path] for file in self.files],
            wall_seconds=round(time.time() - self._started, 3),
            frames=frames,
            fps=fps,
            interrupted=interrupted,
        )

    def _file_report(self, file: BatchFile, stream: StreamSummary) -> FileReport:
        return FileReport.from_stream(file.relative, self._output(file, stream.status), stream)

    def _skipped(self, file: BatchFile, earlier: FileReport | None) -> FileReport:
        """A complete file's row: from the last report if it has the figures (thousands of
        files resume without re-reading their results), else read back from its results."""
        output = self._output(file)
        if earlier is not None and earlier.status in ("done", "skipped"):
            return dataclasses.replace(earlier, status="skipped", output=output)
        return FileReport.from_results(file.relative, output, self.layout.jsonl(file))

    def _output(self, file: BatchFile, status: str = "done") -> str:
        """The file's results: complete, or partial (`.part`) for a failed or stopped file
        ("" if it has none)."""
        path = self.layout.jsonl(file)
        if status not in ("done", "skipped"):
            path = path.with_name(path.name + PARTIAL_SUFFIX)
        return path.relative_to(self.layout.root).as_posix() if path.exists() else ""

    def _make_pipeline(self, todo: Sequence[BatchFile]) -> Pipeline:
        # A generator, so each file becomes a source only when its turn comes.
        return Pipeline(
            file_sources(todo), self._model, sinks=batch_sinks(self.layout),
            concurrency=self.concurrency, analytics=self.analytics,
            streams=StreamOptions(motion=self.motion), detector_options=self.detector_options,
        )  # fmt: skip


def batch_sinks(layout: OutputLayout) -> list[Sink]:
    """The sinks of a batch job: results (and annotated videos) renamed only when complete."""
    sinks: list[Sink] = [JsonlSink(layout.root, keep_incomplete=False)]
    if layout.save_video:
        sinks.append(AnnotatedVideoSink(layout.root, keep_incomplete=False))
    if layout.events:  # tracking on
        sinks.append(EventsJsonlSink(layout.root, keep_incomplete=False))
    return sinks


def file_sources(files: Iterable[BatchFile]) -> Iterator[FileSource]:
    """A source per file, made only when the engine asks for the next one."""
    return (FileSource(file.path, name=file.key) for file in files)
