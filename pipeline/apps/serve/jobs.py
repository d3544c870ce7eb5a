"""Batch jobs inside the service: folders of recordings processed beside the cameras, at batch
class (they take the requests the cameras leave idle), started, followed and stopped through
the API (`/api/jobs`). A job is a `BatchJob` started in the running pipeline: resumable, with
its report in its output folder.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.apps.batch.job import BatchJob
from pipeline.apps.batch.report import FILE_STATUSES
from pipeline.apps.serve.config import ConfigError
from pipeline.engine.running import RunningPipeline
from pipeline.errors import VapipeError


class JobNotFound(VapipeError):
    """No batch job has that id."""


class JobController(Protocol):
    """What the API asks of the service about batch jobs (JSON-ready dicts)."""

    def list_jobs(self) -> list[dict]: ...

    def get_job(self, job_id: str) -> dict: ...

    def start_job(self, request: JobRequest) -> dict: ...

    def stop_job(self, job_id: str) -> dict: ...


@dataclass(frozen=True)
class JobRequest:
    """A job's folders (already checked to lie where the API allows) and options."""

    inputs: tuple[Path, ...]
    out: Path
    patterns: tuple[str, ...] = ()
    force: bool = False
    save_video: bool = False
    concurrency: int | None = None


_FIELDS = {"input", "out", "glob", "force", "save_video", "concurrency"}
MAX_CONCURRENCY = 64  # files of one job at once (each holds a decoder thread and its queue)
MAX_JOBS = 100  # jobs the table keeps; the oldest finished ones go first


def parse_job(
    body: dict[str, Any], media_root: Path | None, output_root: Path | None
) -> JobRequest:
    """A job request from a JSON body: `input` (a folder or a list) under `[http] media_root`,
    `out` under `[output] dir`; errors name the field (ConfigError, or PermissionError for a
    path outside where it may be)."""
    for key in body:
        if key not in _FIELDS:
            raise ConfigError(f"{key}: unknown field; valid: {', '.join(sorted(_FIELDS))}")
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise ConfigError('input: give a folder (or a list of folders), e.g. "input": "cam1"')
    out = body.get("out")
    if not isinstance(out, str) or not out:
        raise ConfigError('out: give the output folder, e.g. "out": "batch/cam1"')
    patterns = body.get("glob", [])
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError('glob: give a pattern or a list of patterns, e.g. "*.mp4"')
    for flag in ("force", "save_video"):
        if not isinstance(body.get(flag, False), bool):
            raise ConfigError(f"{flag}: must be true or false")
    concurrency = body.get("concurrency")
    if concurrency is not None and (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ConfigError(f"concurrency: must be an integer from 1 to {MAX_CONCURRENCY}")
    return JobRequest(
        inputs=tuple(_under(media_root, i, "input", "[http] media_root") for i in inputs),
        out=_under(output_root, out, "out", "[output] dir"),
        patterns=tuple(patterns), force=body.get("force", False),
        save_video=body.get("save_video", False), concurrency=concurrency,
    )  # fmt: skip


def _under(root: Path | None, path: str, field: str, setting: str) -> Path:
    if root is None:
        raise PermissionError(f"{field}: batch jobs through the API need {setting} to be set")
    base = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(base / path))
    if not resolved.is_relative_to(base):
        raise PermissionError(f"{field}: must lie under {setting}")
    return resolved


class JobsFull(VapipeError):
    """The table holds `MAX_JOBS` jobs, none of them over."""


class JobTable:
    """The service's batch jobs by id (`job-1`, `job-2` ...), in the order they started; at
    most `max_jobs` (the oldest finished ones are forgotten first)."""

    def __init__(self, max_jobs: int = MAX_JOBS) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[BatchJob, JobRequest]] = {}
        self._ids = itertools.count(1)
        self._max = max_jobs

    @staticmethod
    def prepare(request: JobRequest) -> BatchJob:
        """The job, its folders scanned (slow on a big folder: call it without the service's
        lock)."""
        return BatchJob(
            list(request.inputs), None, request.out, patterns=request.patterns,
            concurrency=request.concurrency, force=request.force, save_video=request.save_video,
        )  # fmt: skip

    def start(
        self, pipeline: RunningPipeline, request: JobRequest, job: BatchJob | None = None
    ) -> dict:
        job = job if job is not None else self.prepare(request)
        with self._lock:
            self._make_room()
            job_id = f"job-{next(self._ids)}"
            self._jobs[job_id] = (job, request)
        try:
            job.start(pipeline)
        except BaseException:
            with self._lock:
                del self._jobs[job_id]
            raise
        return self.describe(job_id)

    def _make_room(self) -> None:
        """Forget the oldest finished jobs beyond the bound (lock held)."""
        while len(self._jobs) >= self._max:
            over = next((i for i, (job, _) in self._jobs.items() if job.progress().over), None)
            if over is None:
                raise JobsFull(
                    f"{len(self._jobs)} batch jobs are running, the most kept; stop one "
                    "(DELETE /api/jobs/ID) or wait for one to end"
                )
            del self._jobs[over]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def stop(self, job_id: str, timeout: float = 30.0) -> dict:
        job, _ = self._get(job_id)
        job.stop()
        job.wait(timeout)
        return self.describe(job_id)

    def stop_all(self) -> None:
        for job_id in self.ids():
            self._get(job_id)[0].stop()

    def describe(self, job_id: str) -> dict:
        job, request = self._get(job_id)
        view: dict[str, Any] = {
            "id": job_id, "input": [str(p) for p in request.inputs], "out": str(request.out),
            **job.progress().to_dict(),
        }  # fmt: skip
        report = job.report
        if report is not None:
            view["report"] = {
                "files": len(report.files), "frames": report.frames,
                "interrupted": report.interrupted,
                "by_status": {status: report.count(status) for status in FILE_STATUSES},
            }  # fmt: skip
        return view

    def _get(self, job_id: str) -> tuple[BatchJob, JobRequest]:
        with self._lock:
            entry = self._jobs.get(job_id)
        if entry is None:
            raise JobNotFound(f"no batch job {job_id!r}")
        return entry
