"""The fair frame queue: bounded lanes, round-robin service, block and drop-oldest policies."""

from __future__ import annotations

import threading

import pytest

from pipeline.engine.frame_queue import FairFrameQueue, QueueClosed, QueuePolicy


def test_get_serves_streams_round_robin_whatever_their_backlog():
    queue: FairFrameQueue[str] = FairFrameQueue(lane_capacity=8)
    for stream in "abc":
        queue.add_lane(stream, QueuePolicy.BLOCK)
    for i in range(8):
        queue.put("a", f"a{i}")
    queue.put("b", "b0")
    queue.put("c", "c0")
    queue.put("c", "c1")
    got = [queue.get() for _ in range(6)]
    assert got == ["a0", "b0", "c0", "a1", "c1", "a2"]


def test_block_policy_waits_for_room_and_loses_nothing():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=2)
    queue.add_lane("s", QueuePolicy.BLOCK)
    queue.seal()

    def produce():
        for i in range(100):
            queue.put("s", i)
        queue.close_lane("s")

    producer = threading.Thread(target=produce)
    producer.start()
    got = []
    while (item := queue.get()) is not None:
        got.append(item)
        assert queue.depth("s") <= 2
    producer.join()
    assert got == list(range(100))


def test_drop_oldest_policy_returns_the_dropped_item_and_keeps_the_newest():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=3)
    queue.add_lane("live", QueuePolicy.DROP_OLDEST)
    queue.seal()
    dropped = [queue.put("live", i) for i in range(5)]
    assert dropped == [None, None, None, 0, 1]
    queue.close_lane("live")
    assert [queue.get() for _ in range(4)] == [2, 3, 4, None]


def test_abort_wakes_a_blocked_producer_with_queue_closed():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=1)
    queue.add_lane("s", QueuePolicy.BLOCK)
    queue.put("s", 0)
    errors = []

    def produce():
        try:
            queue.put("s", 1)
        except QueueClosed as error:
            errors.append(error)

    producer = threading.Thread(target=produce)
    producer.start()
    queue.abort()
    producer.join(timeout=5)
    assert not producer.is_alive() and len(errors) == 1
    assert queue.get() is None


def test_get_returns_none_only_when_every_lane_is_closed_and_empty():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=2)
    queue.add_lane("a", QueuePolicy.BLOCK)
    queue.add_lane("b", QueuePolicy.BLOCK)
    queue.seal()
    queue.put("a", 1)
    queue.close_lane("a")
    assert queue.get() == 1
    result = []
    consumer = threading.Thread(target=lambda: result.append(queue.get()))
    consumer.start()
    consumer.join(timeout=0.2)
    assert consumer.is_alive(), "get must wait while lane b is open"
    queue.close_lane("b")
    consumer.join(timeout=5)
    assert result == [None]


def test_an_unsealed_queue_waits_for_lanes_added_later():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=2)
    queue.add_lane("a", QueuePolicy.BLOCK)
    queue.close_lane("a")
    queue.remove_lane("a")
    result = []
    consumer = threading.Thread(target=lambda: result.extend([queue.get(), queue.get()]))
    consumer.start()
    consumer.join(timeout=0.2)
    assert consumer.is_alive(), "get must wait: another stream may still join"
    queue.add_lane("b", QueuePolicy.BLOCK)
    queue.put("b", 7)
    queue.close_lane("b")
    queue.seal()
    consumer.join(timeout=5)
    assert result == [7, None]


def test_only_a_closed_empty_lane_can_be_removed():
    queue: FairFrameQueue[int] = FairFrameQueue(lane_capacity=2)
    queue.add_lane("a", QueuePolicy.BLOCK)
    queue.put("a", 1)
    queue.close_lane("a")
    with pytest.raises(ValueError, match="closed, empty"):
        queue.remove_lane("a")


def test_lane_capacity_must_be_positive():
    with pytest.raises(ValueError, match="lane_capacity"):
        FairFrameQueue(0)


def test_drop_oldest_with_one_slot_per_lane_serves_each_item_once():
    queue = FairFrameQueue(lane_capacity=1)
    queue.add_lane("cam", QueuePolicy.DROP_OLDEST)
    assert queue.put("cam", 1) is None
    assert queue.put("cam", 2) == 1  # the lane's one slot: the oldest makes room
    queue.close_lane("cam")
    queue.seal()
    assert queue.get() == 2
    assert queue.get() is None
