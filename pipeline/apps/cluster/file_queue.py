"""The batch job's work queue: workers pull files from it, report them, and are fenced off
when lost, their unfinished files going back to the front of the queue."""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.summary import Progress, StreamSummary

NO_PROGRESS = Progress(processed=0, decoded=0, dropped=0, expected=0)


def add_progress(a: Progress, b: Progress) -> Progress:
    pairs = zip(dataclasses.astuple(a), dataclasses.astuple(b), strict=True)
    return Progress(*(x + y for x, y in pairs))


@dataclass(frozen=True)
class QueuedFile:
    """A file to process: its key (its results' name) and absolute path. (The queue's process
    imports only this module and `pipeline.summary`: 0.02 s of CPU where the batch job's
    modules, through the tracker's SciPy, took 0.57 s.)"""

    key: str
    path: str


@dataclass(frozen=True)
class FileEnded:
    """A file a worker finished (done, failed or stopped), with the node that did it."""

    key: str
    node: str
    summary: StreamSummary
    retries: int


@dataclass(frozen=True)
class QueueState:
    """What the driver polls: files ended since the last poll, progress summed over the
    workers, and the files waiting or held by a worker."""

    ended: list[FileEnded]
    progress: Progress
    pending: int
    held: int


class FileQueue:
    """Runs as one Ray actor near the driver; its calls run one at a time (no locks).

    A file is held by the worker that took it until that worker reports it ended. A worker
    declared lost is fenced: it gets no more files, its reports are refused and it may not
    rename results to their final names (`may_commit`), so a file redone elsewhere cannot
    appear twice even if the lost worker's process lingers.
    """

    def __init__(self, files: Sequence[QueuedFile]) -> None:
        self._pending: deque[QueuedFile] = deque(files)
        self._held: dict[str, tuple[str, QueuedFile]] = {}  # key -> (worker, file)
        self._fenced: set[str] = set()
        self._retries: Counter[str] = Counter()
        self._ended: list[FileEnded] = []
        self._progress: dict[str, Progress] = {}
        self._lost_progress = NO_PROGRESS
        self._closed = False

    def next_file(self, worker: str) -> QueuedFile | None:
        if self._closed or worker in self._fenced or not self._pending:
            return None
        file = self._pending.popleft()
        self._held[file.key] = (worker, file)
        return file

    def may_commit(self, worker: str, key: str) -> bool:
        holder = self._held.get(key)
        return worker not in self._fenced and holder is not None and holder[0] == worker

    def file_ended(self, worker: str, node: str, summary: StreamSummary) -> bool:
        if not self.may_commit(worker, summary.name):
            return False
        del self._held[summary.name]
        self._ended.append(FileEnded(summary.name, node, summary, self._retries[summary.name]))
        return True

    def progress(self, worker: str, progress: Progress) -> None:
        if worker not in self._fenced:
            self._progress[worker] = progress

    def worker_lost(self, worker: str) -> list[str]:
        """Fence the worker off; its unfinished files go first in the queue. Their keys."""
        self._fenced.add(worker)
        lost = self._progress.pop(worker, NO_PROGRESS)
        self._lost_progress = add_progress(
            self._lost_progress, dataclasses.replace(lost, expected=0, streams_active=0)
        )
        keys = [key for key, (holder, _) in self._held.items() if holder == worker]
        for key in reversed(keys):
            self._pending.appendleft(self._held.pop(key)[1])
            self._retries[key] += 1
        return keys

    def close(self) -> None:
        """Hand out no more files (the job is stopping)."""
        self._closed = True

    def poll(self) -> QueueState:
        ended, self._ended = self._ended, []
        total = self._lost_progress
        for progress in self._progress.values():
            total = add_progress(total, progress)
        pending = 0 if self._closed else len(self._pending)
        return QueueState(ended, total, pending, len(self._held))
