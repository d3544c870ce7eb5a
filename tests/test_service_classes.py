"""Service classes in the scheduler, on a fake request pool (no device): live frames go first,
batch frames hold at most their bound of requests, batch lanes shrink while live frames wait."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

import numpy as np
import pytest

from pipeline.engine.frame_queue import FairFrameQueue, QueuePolicy
from pipeline.engine.scheduler import Job, Scheduler
from pipeline.engine.service_classes import BatchBound, ServiceClass
from sources.frame import Frame

LIVE, BATCH = ServiceClass.LIVE, ServiceClass.BATCH
WAIT = 10.0  # seconds: only ever reached if the scheduler is broken


class FakeRuntime:
    """A request pool of `nireq` requests that finish only when the test says so."""

    def __init__(
        self, nireq: int, optimal_nireq: int | None = None, background_nireq: int = 0
    ) -> None:
        self.nireq = nireq
        self.optimal_nireq = optimal_nireq or nireq  # requests the device runs at once
        self.background_nireq = background_nireq  # a background copy's requests, if any
        self.has_background = background_nireq > 0
        self.on_background: list[str] = []  # streams dispatched to the background copy
        self.failed = False
        self.service_seconds = 0.01
        self.on_released = lambda: None
        self.submitted: list[str] = []  # stream names, in dispatch order
        self.running: list[tuple[ServiceClass, str, bool]] = []  # in flight, oldest first
        self.most_batch_in_flight = 0
        self._counts: Counter[ServiceClass] = Counter()
        self._background = 0  # of the requests in flight, on the background copy
        self._changed = threading.Condition()

    def in_flight(self, kind: ServiceClass) -> int:
        return self._counts[kind]

    def in_flight_total(self) -> int:
        return self._counts.total()

    def background_in_flight(self) -> int:
        return self._background

    def _first_copy_in_flight(self) -> int:
        return self._counts.total() - self._background

    def wait_for_idle_request(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._first_copy_in_flight() < self.nireq)

    def submit(self, tensor: np.ndarray, userdata, kind: ServiceClass, background=False) -> None:
        background = background and self.has_background
        with self._changed:
            if background:
                assert self._background < self.background_nireq, "submit would block"
                self._background += 1
                self.on_background.append(userdata.job.frame.stream)
            else:
                assert self._first_copy_in_flight() < self.nireq, "submit would block"
            self._counts[kind] += 1
            self.most_batch_in_flight = max(self.most_batch_in_flight, self._counts[BATCH])
            self.running.append((kind, userdata.job.frame.stream, background))
            self.submitted.append(userdata.job.frame.stream)
            self._changed.notify_all()

    def finish(self, stream: str) -> None:
        """Complete the oldest request of `stream`."""
        with self._changed:
            entry = next(e for e in self.running if e[1] == stream)
            self.running.remove(entry)
            self._counts[entry[0]] -= 1
            self._background -= entry[2]
            self._changed.notify_all()
        self.on_released()

    def wait_submitted(self, count: int) -> list[str]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.submitted) >= count, WAIT)
            return list(self.submitted)

    def settled(self, count: int) -> list[str]:
        """The dispatches once `count` are made and the scheduler waits for the next event."""
        submitted = self.wait_submitted(count)
        with self._changed:  # nothing more may come: the pool is full or batch is at its bound
            self._changed.wait(0.2)
            assert len(self.submitted) == count, f"dispatched more: {self.submitted}"
        return submitted


def job(stream: str, index: int) -> Job:
    frame = Frame(stream, index, index * 40.0, 0.0, np.zeros((2, 2, 3), np.uint8))
    service_class = LIVE if stream == "cam" else BATCH
    return Job(frame, np.zeros(1), None, itertools.count(index), service_class)


def start(queue: FairFrameQueue[Job], runtime: FakeRuntime, bound: int) -> Scheduler:
    scheduler = Scheduler(queue, runtime, BatchBound(runtime.nireq, fixed=bound))
    runtime.on_released = queue.wake
    scheduler.start()
    return scheduler


def stop(queue: FairFrameQueue[Job], runtime: FakeRuntime, scheduler: Scheduler) -> None:
    queue.abort()
    for _, stream, _ in list(runtime.running):  # a scheduler waiting for a request looks again
        runtime.finish(stream)
    assert scheduler.finished.wait(WAIT)
    assert scheduler.error is None


def classes_queue() -> FairFrameQueue[Job]:
    queue: FairFrameQueue[Job] = FairFrameQueue(lane_capacity=8, by_class=True)
    queue.add_lane("cam", QueuePolicy.DROP_OLDEST, LIVE)
    queue.add_lane("rec", QueuePolicy.BLOCK, BATCH)
    return queue


def test_ready_live_frames_are_dispatched_before_batch_frames_queued_earlier():
    queue = classes_queue()
    for i in range(4):
        queue.put("rec", job("rec", i))
    queue.put("cam", job("cam", 0))
    queue.put("cam", job("cam", 1))
    runtime = FakeRuntime(nireq=4)
    scheduler = start(queue, runtime, bound=2)
    try:
        assert runtime.settled(4) == ["cam", "cam", "rec", "rec"]
        # A live frame arrives while the pool is full: the next idle request is its.
        queue.put("cam", job("cam", 2))
        runtime.finish("rec")
        assert runtime.settled(5)[4] == "cam"
        # A live request finishes with no live frame waiting: batch takes it back.
        runtime.finish("cam")
        assert runtime.settled(6)[5] == "rec"
    finally:
        stop(queue, runtime, scheduler)
    assert runtime.most_batch_in_flight == 2


def test_batch_never_holds_more_requests_than_its_bound_while_live_streams_run():
    queue = classes_queue()
    for i in range(8):
        queue.put("rec", job("rec", i))
    runtime = FakeRuntime(nireq=4)
    scheduler = start(queue, runtime, bound=3)
    try:
        assert runtime.settled(3) == ["rec"] * 3  # one request stays free for live frames
        for n in range(4, 9):  # each batch request that finishes lets exactly one more in
            runtime.finish("rec")
            assert runtime.settled(n)[-1] == "rec"
    finally:
        stop(queue, runtime, scheduler)
    assert runtime.most_batch_in_flight == 3


def test_batch_is_dispatched_only_while_the_device_has_an_idle_slot():
    """A batch request submitted to a busy device would wait in the device's own first-come
    queue, ahead of any live frame submitted after it."""
    queue = classes_queue()
    for i in range(6):
        queue.put("rec", job("rec", i))
    queue.put("cam", job("cam", 0))
    runtime = FakeRuntime(nireq=4, optimal_nireq=2)
    scheduler = start(queue, runtime, bound=3)
    try:
        assert runtime.settled(2) == ["cam", "rec"]  # the device is busy: batch waits
        queue.put("cam", job("cam", 1))
        assert runtime.settled(3)[2] == "cam"  # a live frame still gets an idle request
        runtime.finish("cam")
        runtime.finish("cam")
        assert runtime.settled(4)[3] == "rec"  # one slot idle again: batch fills it
    finally:
        stop(queue, runtime, scheduler)
    assert runtime.most_batch_in_flight == 2


def test_with_a_background_copy_batch_fills_its_requests_and_live_keeps_the_first_copy():
    """On the CPU the OS preempts the background copy for live work: batch holds its
    requests (a fixed bound still caps them), not the device's idle slots."""
    queue = classes_queue()
    for i in range(6):
        queue.put("rec", job("rec", i))
    queue.put("cam", job("cam", 0))
    queue.put("cam", job("cam", 1))
    runtime = FakeRuntime(nireq=4, optimal_nireq=2, background_nireq=4)
    scheduler = start(queue, runtime, bound=3)
    try:
        # Both device slots hold live frames, yet batch takes three background requests.
        assert runtime.settled(5) == ["cam", "cam", "rec", "rec", "rec"]
        assert runtime.on_background == ["rec"] * 3
        queue.put("cam", job("cam", 2))
        assert runtime.settled(6)[5] == "cam"  # live still dispatched at once, on the first
        runtime.finish("rec")
        assert runtime.settled(7)[6] == "rec"
        assert runtime.on_background == ["rec"] * 4
    finally:
        stop(queue, runtime, scheduler)
    assert runtime.most_batch_in_flight == 3


def test_without_live_streams_batch_frames_use_every_request():
    queue: FairFrameQueue[Job] = FairFrameQueue(lane_capacity=8, by_class=True)
    queue.add_lane("rec", QueuePolicy.BLOCK, BATCH)
    for i in range(6):
        queue.put("rec", job("rec", i))
    runtime = FakeRuntime(nireq=4)
    scheduler = start(queue, runtime, bound=1)
    try:
        assert runtime.settled(4) == ["rec"] * 4
    finally:
        stop(queue, runtime, scheduler)


def test_fair_scheduling_serves_every_stream_round_robin_whatever_its_class():
    queue: FairFrameQueue[Job] = FairFrameQueue(lane_capacity=8, by_class=False)
    queue.add_lane("rec", QueuePolicy.BLOCK, BATCH)
    queue.add_lane("cam", QueuePolicy.DROP_OLDEST, LIVE)
    for i in range(3):
        queue.put("rec", job("rec", i))
        queue.put("cam", job("cam", i))
    assert [queue.get().frame.stream for _ in range(6)] == ["rec", "cam"] * 3


def test_a_batch_lane_holds_one_frame_while_live_frames_wait():
    queue = classes_queue()
    queue.put("cam", job("cam", 0))
    queue.put("rec", job("rec", 0))
    second = threading.Thread(target=queue.put, args=("rec", job("rec", 1)))
    second.start()
    second.join(0.2)
    assert second.is_alive(), "the batch decoder must wait while a live frame waits"
    assert queue.get().frame.stream == "cam"  # no live frame waits any more ...
    assert queue.get().frame.stream == "rec"  # ... and the batch lane has room again
    second.join(WAIT)
    assert not second.is_alive()
    assert queue.depth("rec") == 1


@pytest.mark.parametrize(
    ("nireq", "live_fps", "service_s", "fixed", "bound"),
    [
        (4, 0.0, 0.01, None, 4),  # live streams connecting: the device's idle slots decide
        (4, 12.5, 0.016, None, 3),  # one camera: 0.2 requests busy on average
        (8, 200.0, 0.02, None, 4),  # 4 requests busy on average for live
        (4, 400.0, 0.02, None, 1),  # live needs them all: batch keeps one
        (8, 200.0, 0.02, 6, 6),  # fixed by the user
        (4, 0.0, 0.01, 9, 4),  # fixed, at most the pool
    ],
)
def test_the_batch_bound_leaves_live_streams_the_requests_they_need(
    nireq, live_fps, service_s, fixed, bound
):
    batch_bound = BatchBound(nireq, fixed)
    batch_bound.live_fps = live_fps
    assert batch_bound.value(service_s) == bound


def test_the_live_rate_is_measured_from_live_dispatches():
    bound = BatchBound(4)
    for i in range(101):  # 100 frames a second for one second
        bound.live_dispatched(i / 100)
    bound.observe(1.0)
    assert bound.live_fps == pytest.approx(50.0, rel=0.05)  # half-way there (weight 0.5)
