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
from pipeline.engine.pipeline import Pipeline
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
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ConfigError("concurrency: must be a positive integer")
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


class JobTable:
    """The service's batch jobs by id (`job-1`, `job-2` ...), in the order they started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[BatchJob, JobRequest]] = {}
        self._ids = itertools.count(1)

    def start(self, pipeline: Pipeline, request: JobRequest) -> dict:
        job = BatchJob(
            list(request.inputs), None, request.out, patterns=request.patterns,
            concurrency=request.concurrency, force=request.force, save_video=request.save_video,
        )  # fmt: skip
        job.start(pipeline)
        with self._lock:
            job_id = f"job-{next(self._ids)}"
            self._jobs[job_id] = (job, request)
        return self.describe(job_id)

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
