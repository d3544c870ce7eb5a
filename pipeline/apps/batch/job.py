"""Headless batch processing of video folders: every file analysed once, resumably."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
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

REPORT_SECONDS = 2.0  # the report is rewritten at most this often while files end


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
        self._stopped = False  # `stop` was called, perhaps before the pipeline existed

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

        last_written = time.monotonic()

        def file_ended(stream: StreamSummary) -> None:
            nonlocal last_written
            file = by_key[stream.name]
            output = self._output(file, stream.status)
            reports[file.path] = FileReport.from_stream(file.relative, output, stream)
            emit(reports[file.path])
            if time.monotonic() - last_written >= REPORT_SECONDS:
                self._report(reports, todo, started).write(self.layout.root)
                last_written = time.monotonic()

        interrupted, frames, fps = False, 0, 0.0
        if todo:
            self.layout.root.mkdir(parents=True, exist_ok=True)
            with self._make_pipeline(todo) as pipeline:
                self._pipeline = pipeline
                if self._stopped:  # asked while the model was loading
                    pipeline.stop()
                tick = None
                if on_tick is not None:
                    ended = lambda: len(reports) - (len(self.files) - len(todo))  # noqa: E731
                    tick = lambda progress: on_tick(progress, ended(), len(todo))  # noqa: E731
                summary = pipeline.run(on_tick=tick, on_stream_end=file_ended)
                self._pipeline = None
            interrupted, frames, fps = summary.interrupted, summary.total_frames, summary.total_fps
        report = self._report(reports, todo, started, frames, fps, interrupted)
        report.write(self.layout.root)
        return report

    def _report(
        self,
        reports: dict[Path, FileReport],
        todo: Sequence[BatchFile],
        started: float,
        frames: int | None = None,
        fps: float = 0.0,
        interrupted: bool = False,
    ) -> BatchReport:
        """The report so far: files not reported yet are `pending`; `frames` defaults to
        those of the files ended in this run."""
        rows = {file.path: FileReport(file.relative, "pending") for file in todo} | reports
        if frames is None:
            frames = sum(rows[file.path].frames for file in todo)
        return BatchReport(
            files=[rows[file.path] for file in self.files],
            wall_seconds=round(time.time() - started, 3),
            frames=frames,
            fps=fps,
            interrupted=interrupted,
        )

    def stop(self) -> None:
        """Stop starting files and stop those in progress (they are reported `stopped`); any
        thread, also before `run` has loaded the model."""
        self._stopped = True
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
        root = self.layout.root
        sinks: list[Sink] = [JsonlSink(root, keep_incomplete=False)]
        if self.layout.save_video:
            sinks.append(AnnotatedVideoSink(root, keep_incomplete=False))
        # A generator, so each file becomes a source only when its turn comes.
        sources = (FileSource(file.path, name=file.key) for file in todo)
        return Pipeline(
            sources, self._model, sinks=sinks, concurrency=self.concurrency,
            **self._detector_options,
        )  # fmt: skip
