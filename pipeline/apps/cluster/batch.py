"""`vapipe batch --ray`: the batch job with its files spread over a Ray cluster's nodes."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.apps.batch.files import BatchFile
from pipeline.apps.batch.job import BatchJob
from pipeline.apps.batch.report import FileReport
from pipeline.apps.cluster.batch_worker import BatchWorker
from pipeline.apps.cluster.connect import (
    ClusterError,
    connect,
    import_ray,
    on_node,
    shared_machine_cores,
    spread,
    worker_nodes,
)
from pipeline.apps.cluster.file_queue import FileEnded, FileQueue, QueuedFile
from pipeline.errors import VapipeError
from pipeline.models.detector_options import DetectorOptions
from pipeline.summary import Progress, StreamSummary

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class ClusterBatchJob(BatchJob):
    """A `BatchJob` whose files are processed by workers on a Ray cluster's nodes.

    One worker per node (or `workers` spread over them), each owning one compiled model and
    running the engine over files it pulls from a queue whenever it has room: fast nodes do
    more. Outputs, resume and report are the local job's (OUT must be a folder every node
    sees; with `analytics`, each file is tracked on its worker and its events written beside
    its results, as locally); the report also says which node did each file and how often it
    was retried. A node lost mid-run has its unfinished files redone on the others. `address`
    is `auto`, `HOST:PORT` or `ray://HOST:PORT` to join a cluster, None to start Ray here.
    """

    def __init__(
        self,
        inputs: Sequence[str | Path],
        model: str | Path,
        out: str | Path,
        *,
        address: str | None = None,
        workers: int | None = None,
        **options: Any,
    ) -> None:
        from pipeline.models.loader import find_model_file

        import_ray()  # before any work: say how to install it
        find_model_file(Path(model))  # a missing model is refused here, not on every node
        super().__init__(inputs, model, out, **options)
        self.address = address
        self.workers = workers
        self._ended_files: dict[str, FileEnded] = {}
        self._stop_asked = threading.Event()

    def stop(self) -> None:
        self._stop_asked.set()

    def _file_report(self, file: BatchFile, stream: StreamSummary) -> FileReport:
        report = super()._file_report(file, stream)
        ended = self._ended_files.get(file.key)
        if ended is None:
            return report
        return dataclasses.replace(report, node=ended.node, retries=ended.retries)

    def _process(
        self,
        todo: Sequence[BatchFile],
        file_ended: Callable[[StreamSummary], None],
        on_tick: Callable[[Progress], None] | None,
    ) -> tuple[bool, int, float]:
        import ray

        started_ray = not ray.is_initialized()
        connect(self.address)
        try:
            return _Run(self, ray).process(todo, file_ended, on_tick)
        finally:
            if started_ray:
                ray.shutdown()

    def _worker_options(self) -> DetectorOptions:
        return self.detector_options.with_absolute_labels()  # workers have their own folder


class _Run:
    """One run of a cluster job: the queue, the workers, and the driver's polling loop."""

    def __init__(self, job: ClusterBatchJob, ray: Any) -> None:
        self.job = job
        self.ray = ray
        self.workers: dict[str, Any] = {}  # worker id -> actor
        self.running: dict[str, Any] = {}  # worker id -> its `run` call
        self.idle: set[str] = set()

    def process(
        self,
        todo: Sequence[BatchFile],
        file_ended: Callable[[StreamSummary], None],
        on_tick: Callable[[Progress], None] | None,
    ) -> tuple[bool, int, float]:
        ray = self.ray
        here = ray.get_runtime_context().get_node_id()
        files = [QueuedFile(file.key, str(file.path.resolve())) for file in todo]
        queue = ray.remote(FileQueue).options(num_cpus=0, scheduling_strategy=on_node(here))
        self.queue = queue.remote(files)
        try:
            self._start_workers()
            started = time.time()
            interrupted, frames = self._loop(file_ended, on_tick)
            seconds = time.time() - started
        finally:
            for actor in [*self.workers.values(), self.queue]:
                ray.kill(actor)
        return interrupted, frames, round(frames / seconds, 2) if seconds > 0 else 0.0

    def _start_workers(self) -> None:
        ray, job = self.ray, self.job
        layout = dataclasses.replace(job.layout, root=job.layout.root.resolve())
        model = str(Path(job._model).resolve())
        actor = ray.remote(BatchWorker)
        nodes = spread(worker_nodes(ray), job.workers)
        cores = shared_machine_cores(nodes)
        for i, node in enumerate(nodes):
            per_node = sum(1 for n in nodes if n == node)
            threads = max(1, node.cpus // per_node)
            options = job._worker_options()
            self.workers[f"w{i}"] = actor.options(
                num_cpus=0, max_concurrency=2, max_restarts=0,
                scheduling_strategy=on_node(node.node_id),
            ).remote(
                model, layout, node.name, job.concurrency, threads, options, job.analytics,
                cores[i],
            )  # fmt: skip
        names = self._wait_ready()
        log.info("%d workers on %s", len(self.workers), ", ".join(sorted(set(names))))
        for worker, actor in self.workers.items():
            self.running[worker] = actor.run.remote(self.queue, worker)

    def _wait_ready(self) -> list[str]:
        """Each worker's node, once its model is loaded; a model error is raised as is."""
        ray = self.ray
        try:
            return ray.get([actor.ready.remote() for actor in self.workers.values()])
        except ray.exceptions.RayActorError as error:
            last_line = str(error).strip().splitlines()[-1]
            raise ClusterError(f"a worker could not start: {last_line}") from None
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, VapipeError):
                raise error.cause from None
            raise

    def _loop(
        self,
        file_ended: Callable[[StreamSummary], None],
        on_tick: Callable[[Progress], None] | None,
    ) -> tuple[bool, int]:
        ray, job = self.ray, self.job
        interrupted, frames = False, 0
        while True:
            try:
                refs = list(self.running.values())
                if refs:
                    ray.wait(refs, num_returns=1, timeout=POLL_SECONDS)
                else:
                    time.sleep(POLL_SECONDS)
                self._collect_finished_runs()
                state = ray.get(self.queue.poll.remote())
                for ended in state.ended:
                    job._ended_files[ended.key] = ended
                    frames += ended.summary.frames_processed
                    file_ended(ended.summary)
                if on_tick is not None:
                    on_tick(state.progress)
                if job._stop_asked.is_set() and not interrupted:
                    interrupted = True
                    self._stop_workers()
                if state.pending and not interrupted:
                    self._restart_idle()
                if not self.running and (not state.pending or not self.workers or interrupted):
                    if state.pending:
                        log.error("no worker left: %d files not processed", state.pending)
                    return interrupted, frames
            except KeyboardInterrupt:
                if interrupted:
                    raise
                log.warning("interrupted: finishing files in progress (Ctrl-C again to quit)")
                job._stop_asked.set()

    def _collect_finished_runs(self) -> None:
        ray = self.ray
        done, _ = ray.wait(list(self.running.values()), num_returns=len(self.running), timeout=0)
        for worker, ref in list(self.running.items()):
            if ref not in done:
                continue
            del self.running[worker]
            try:
                ray.get(ref)
                self.idle.add(worker)
            except ray.exceptions.RayActorError as error:
                self._lost(worker, error)
            except ray.exceptions.RayTaskError as error:  # a bug of ours in the worker
                log.error("worker %s failed: %s", worker, error)
                self._lost(worker, error)

    def _lost(self, worker: str, error: Exception) -> None:
        keys = self.ray.get(self.queue.worker_lost.remote(worker))
        del self.workers[worker]
        log.warning(
            "worker %s lost (%s); redoing its %d unfinished files on the others%s",
            worker, type(error).__name__, len(keys), f": {', '.join(keys)}" if keys else "",
        )  # fmt: skip

    def _restart_idle(self) -> None:
        for worker in list(self.idle):
            self.idle.discard(worker)
            self.running[worker] = self.workers[worker].run.remote(self.queue, worker)

    def _stop_workers(self) -> None:
        self.queue.close.remote()
        for worker in self.running:
            self.workers[worker].stop.remote()
