"""Headless batch processing of video folders: every file analysed once, resumably."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.apps.batch.files import BatchFile, OutputLayout, find_videos
from pipeline.apps.batch.report import BatchReport, FileReport, previous_reports
from pipeline.engine.pipeline import Pipeline, Progress
from pipeline.outputs.sinks import AnnotatedVideoSink, JsonlSink, Sink
from pipeline.outputs.sinks.jsonl import PARTIAL_SUFFIX
from pipeline.summary import StreamSummary
from sources import FileSource, SourceError

log = logging.getLogger(__name__)


class BatchJob:
    """Analyses every video under some folders, several files at once as concurrent streams.

    The next file starts as soon as one ends, so the device never idles between files. Results
    mirror the input tree (`OUT/<relative path>/<stem>.jsonl`, and with `save_video` an
    annotated copy beside it); each is written under a temporary name and renamed once the
    file is complete, so a file is skipped on the next run exactly when its results are
    complete (`force` processes everything again). A file that fails is reported and the
    others go on. `concurrency` defaults to the request-pool size: each request can then
    serve a different file, and a file opening does not leave the device idle.

        job = BatchJob(["recordings"], "yolo11n_openvino_model", "out")
        report = job.run(on_file=lambda f: print(f.file, f.status))
    """

    def __init__(
        self,
        inputs: Sequence[str | Path],
        model: str | Path,
        out: str | Path,
        *,
        patterns: Sequence[str] = (),
        concurrency: int | None = None,
        force: bool = False,
        save_video: bool = False,
        **detector_options: Any,
    ) -> None:
        self.layout = OutputLayout(Path(out), save_video)
        self.files = find_videos(inputs, patterns, exclude=self.layout.root)
        if not self.files:
            where = ", ".join(map(str, inputs))
            raise SourceError(f"no video files under {where}; check the folder or --glob")
        self.force = force
        self.concurrency = concurrency
        self._detector_options = detector_options  # device, adapter, conf ... as Detector.load
        self._model = model
        self._pipeline: Pipeline | None = None

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
        files in progress are reported `stopped` and processed again next time.
        """
        started = time.time()
        todo = self.pending()
        log.info(
            "%d video files, %d to process, %d complete already%s", len(self.files), len(todo),
            len(self.files) - len(todo), " (force: processing all)" if self.force else "",
        )  # fmt: skip
        reports: dict[Path, FileReport] = {}
        emit = on_file or (lambda report: None)
        earlier = previous_reports(self.layout.root)
        todo_set = set(todo)
        for file in self.files:
            if file not in todo_set:
                reports[file.path] = self._skipped(file, earlier.get(file.relative))
                emit(reports[file.path])
        by_key = {file.key: file for file in todo}

        def file_ended(stream: StreamSummary) -> None:
            file = by_key[stream.name]
            reports[file.path] = self._file_report(file, stream)
            emit(reports[file.path])

        interrupted, frames, fps = False, 0, 0.0
        if todo:
            self.layout.root.mkdir(parents=True, exist_ok=True)
            tick = None
            if on_tick is not None:
                ended = lambda: len(reports) - (len(self.files) - len(todo))  # noqa: E731
                tick = lambda progress: on_tick(progress, ended(), len(todo))  # noqa: E731
            interrupted, frames, fps = self._process(todo, file_ended, tick)
        for file in todo:
            if file.path not in reports:
                reports[file.path] = FileReport(file.relative, "pending")
        wall = time.time() - started
        report = BatchReport(
            files=[reports[file.path] for file in self.files],
            wall_seconds=round(wall, 3),
            frames=frames,
            fps=fps,
            interrupted=interrupted,
        )
        self.layout.root.mkdir(parents=True, exist_ok=True)
        report.write(self.layout.root)
        return report

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
            summary = pipeline.run(on_tick=on_tick, on_stream_end=file_ended)
            self._pipeline = None
        return summary.interrupted, summary.total_frames, summary.total_fps

    def _file_report(self, file: BatchFile, stream: StreamSummary) -> FileReport:
        return FileReport.from_stream(file.relative, self._output(file, stream.status), stream)

    def stop(self) -> None:
        """Stop starting files and stop those in progress (they are reported `stopped`)."""
        if self._pipeline is not None:
            self._pipeline.stop()

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
            concurrency=self.concurrency, **self._detector_options,
        )  # fmt: skip


def batch_sinks(layout: OutputLayout) -> list[Sink]:
    """The sinks of a batch job: results (and annotated videos) renamed only when complete."""
    sinks: list[Sink] = [JsonlSink(layout.root, keep_incomplete=False)]
    if layout.save_video:
        sinks.append(AnnotatedVideoSink(layout.root, keep_incomplete=False))
    return sinks


def file_sources(files: Iterable[BatchFile]) -> Iterator[FileSource]:
    """A source per file, made only when the engine asks for the next one."""
    return (FileSource(file.path, name=file.key) for file in files)
