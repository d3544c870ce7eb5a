"""The ByteTrack tracker on box sequences with known paths."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_tracks import Mover, analyse, frames

from pipeline.analytics import ByteTracker, TrackerOptions, kalman


def track(sequence, options: TrackerOptions | None = None):
    tracker = ByteTracker(options)
    steps = [
        tracker.update(f.detections.boxes, f.detections.scores, f.detections.class_ids, f.time)
        for f in sequence
    ]
    return tracker, steps


def test_a_track_gets_its_id_once_matched_for_the_confirmation_time_and_keeps_it():
    sequence = frames([Mover((100, 200), (60, 0))], seconds=2)  # 30 fps
    tracker, steps = track(sequence)
    assert [s.ids for s in steps[:21]] == [(None,)] * 21  # t < 0.7 s: tentative
    assert [s.ids for s in steps[21:]] == [(1,)] * (len(steps) - 21)
    assert tracker.confirmed_count == 1 and tracker.discarded == 0


def test_a_track_shorter_than_the_confirmation_time_leaves_no_trace():
    brief = Mover((300, 200), (60, 0), visible=lambda t: t < 0.6)
    run = analyse(frames([brief], seconds=3), ["mid=0,0.5,1,0.5"])
    assert run.ids_of(0) == {None} and run.events == [] and run.final_events == ()
    assert run.analytics.summary()["tracks"] == 0
    assert run.analytics.summary()["tentative_discarded"] == 1


@pytest.mark.parametrize("every", [1, 3])
def test_the_confirmation_time_is_in_seconds_of_video(every):
    sequence = frames([Mover((100, 200), (60, 0))], seconds=2, every=every)
    _, steps = track(sequence, TrackerOptions(confirm_seconds=0.5))
    first = next(i for i, s in enumerate(steps) if s.ids == (1,))
    assert sequence[first].time == pytest.approx(0.5)


def test_a_detection_seen_once_never_gets_an_id():
    flash = Mover((300, 200), visible=lambda t: t < 0.02)  # one frame at 30 fps
    tracker, steps = track(frames([flash], seconds=1))
    assert all(s.ids in ((), (None,)) for s in steps)
    assert tracker.confirmed_count == 0 and not any(s.ended for s in steps)


def test_a_low_score_detection_keeps_a_track_alive_but_never_starts_one():
    dimming = Mover((100, 200), (60, 0), score=lambda t: 0.9 if t < 1.5 else 0.3)
    faint = Mover((500, 300), (-30, 0), score=0.3)
    run = analyse(frames([dimming, faint], seconds=3))
    assert run.ids_of(0) == {None, 1}  # None only until confirmed
    assert run.ids_of(1) == {None}
    assert run.analytics.summary()["tracks"] == 1


def test_a_new_track_needs_the_initialisation_score():
    # 0.65 is a high-score detection (>= 0.6) but below ByteTrack's ε = 0.7 to start a track
    run = analyse(frames([Mover((100, 200), (60, 0), score=0.65)], seconds=2))
    assert run.ids_of(0) == {None}


def test_two_objects_passing_each_other_keep_their_ids():
    # same class, same size, opposite directions, boxes overlapping by half as they pass
    right = Mover((80, 200), (200, 0))
    left = Mover((560, 240), (-200, 0))
    run = analyse(frames([right, left], seconds=2.4))
    assert run.ids_of(0) == {None, 1}
    assert run.ids_of(1) == {None, 2}


@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_an_occlusion_shorter_than_the_lost_buffer_keeps_the_id(fps):
    hidden = Mover((100, 240), (100, 0), visible=lambda t: not 1.0 <= t < 1.7)  # 0.7 s
    run = analyse(frames([hidden], seconds=3, fps=fps))
    assert run.ids_of(0) == {None, 1}
    ends = [e for e in run.events if e.type == "track_end"]
    assert [e.track_id for e in ends] == [1]


@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_an_occlusion_longer_than_the_lost_buffer_starts_a_new_id(fps):
    hidden = Mover((100, 240), (100, 0), visible=lambda t: not 1.5 <= t < 3.0)  # 1.5 s
    run = analyse(frames([hidden], seconds=5, fps=fps))
    assert run.ids_of(0) == {None, 1, 2}
    ends = [(e.track_id, e.frame) for e in run.events if e.type == "track_end"]
    # id 1 ends at the first frame more than 1 s after its last sighting (t < 1.5)
    assert ends[0][0] == 1 and 2.5 <= ends[0][1] / fps <= 2.5 + 1.5 / fps
    assert ends[1][0] == 2


def test_the_lost_buffer_is_in_seconds(tmp_path):
    hidden = Mover((100, 240), (100, 0), visible=lambda t: not 1.0 <= t < 2.5)
    run = analyse(frames([hidden], seconds=4), tracker=TrackerOptions(lost_seconds=2.0))
    assert run.ids_of(0) == {None, 1}


def test_every_third_frame_gives_the_same_tracks():
    movers = [
        Mover((80, 200), (150, 0)),
        Mover((560, 240), (-150, 0)),
        Mover((300, 80), (0, 120), visible=lambda t: not 1.0 <= t < 1.5),
    ]
    full = analyse(frames(movers, seconds=3))
    sampled = analyse(frames(movers, seconds=3, every=3))
    for mover in range(3):
        assert full.ids_of(mover) - {None} == sampled.ids_of(mover) - {None}
    assert full.analytics.summary()["tracks"] == sampled.analytics.summary()["tracks"] == 3


def test_a_track_keeps_its_class():
    car = Mover((100, 240), (100, 0), class_id=0, visible=lambda t: t < 1.5)
    person = Mover((200, 240), (100, 0), class_id=1, visible=lambda t: t >= 1.5)
    run = analyse(frames([car, person], seconds=3))
    assert run.ids_of(0) == {None, 1}
    assert run.ids_of(1) == {None, 2}  # where the car would be, but a person: a new track


def test_ids_are_never_reused():
    movers = [
        Mover((100 + 100 * i, 240), (50, 0), visible=lambda t, i=i: 3 * i <= t < 3 * i + 1.2)
        for i in range(4)
    ]  # one after the other, each gone long before the next comes
    run = analyse(frames(movers, seconds=12))
    assert [run.ids_of(i) - {None} for i in range(4)] == [{1}, {2}, {3}, {4}]


def test_fifty_objects_keep_fifty_ids():
    movers = [
        Mover((30 + 60 * (i % 10), 40 + 90 * (i // 10)), (20 - 4 * (i % 10), 10), (30, 60))
        for i in range(50)
    ]
    run = analyse(frames(movers, seconds=3))
    assert sorted(next(iter(run.ids_of(i) - {None})) for i in range(50)) == list(range(1, 51))
    assert all(len(run.ids_of(i) - {None}) == 1 for i in range(50))


def _matrix_filter(boxes: np.ndarray, steps: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """The textbook 8-state Kalman filter with ByteTrack's noise, per box, as reference."""
    means = []
    for b, box in enumerate(boxes):
        z = kalman.xyxy_to_xywh(box[None])[0]
        x = np.r_[z, np.zeros(4)]
        s = np.r_[z[[2, 3, 2, 3]], z[[2, 3, 2, 3]]]
        fps, wp, wv = kalman.REFERENCE_FPS, kalman.POSITION_WEIGHT, kalman.VELOCITY_WEIGHT
        p = np.diag(np.r_[(2 * wp * s[:4]) ** 2, (10 * wv * fps * s[4:]) ** 2])
        h = np.hstack([np.eye(4), np.zeros((4, 4))])
        for dt, measured in steps:
            f = np.eye(8)
            f[:4, 4:] = dt * np.eye(4)
            scale = np.abs(x[[2, 3, 2, 3]])  # ByteTrack: noise from the mean before the step
            x = f @ x
            q = np.diag(np.r_[fps * (wp * scale) ** 2, fps * (fps * wv * scale) ** 2] * dt)
            p = f @ p @ f.T + q
            r = np.diag((wp * np.abs(x[[2, 3, 2, 3]])) ** 2)
            k = p @ h.T @ np.linalg.inv(h @ p @ h.T + r)
            x = x + k @ (kalman.xyxy_to_xywh(measured[b][None])[0] - h @ x)
            p = p - k @ h @ p
        means.append(x)
    return np.array(means)


def test_the_element_wise_kalman_filter_equals_the_matrix_form():
    rng = np.random.default_rng(1)
    boxes = np.array([[100, 100, 140, 180], [300, 50, 420, 130]], float)
    steps = [
        (dt, boxes + rng.normal(0, 3, boxes.shape) + 40 * t)
        for t, dt in enumerate([1 / 30, 0.1, 0.5, 1 / 30, 0.2], start=1)
    ]
    state = kalman.initiate(boxes)
    for dt, measured in steps:
        state = kalman.update(kalman.predict(state, dt), measured)
    expected = _matrix_filter(boxes, steps)
    np.testing.assert_allclose(state[:, kalman.POS], expected[:, :4], rtol=1e-9)
    np.testing.assert_allclose(state[:, kalman.VEL], expected[:, 4:], rtol=1e-9)
