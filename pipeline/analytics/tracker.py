"""A ByteTrack multi-object tracker, per stream, timed by the frames' timestamps.

Written from the ByteTrack paper (Zhang et al., "ByteTrack: Multi-Object Tracking by
Associating Every Detection Box", ECCV 2022, Algorithm 1 and its implementation details)
rather than taken from Roboflow's `trackers`, which pulls in supervision, matplotlib and PyAV
(see `benchmarks/tracker_vs_trackers.py` for the comparison on the same detections).

Each frame: every track's box is predicted to the frame's time (kalman.py); detections
scoring at least `high_score` are matched to the tracked and lost tracks by IoU (first
association); the tracked tracks left over are matched to the low-score detections (second
association, which keeps a track alive through an occlusion that lowers its score); tentative
tracks, seen once, are matched to the high-score detections left; what remains of those
starts tentative tracks when it scores at least `new_track_score`. Matching is a linear
assignment (scipy's `linear_sum_assignment`) on 1 - IoU, refused below a minimum IoU, and
only between boxes of the same class: a track keeps its class.

A tentative track is confirmed once it has been matched for `confirm_seconds` of stream time
(the time between consecutive processed frames in which it was matched, added up; a single
missed processed frame between two matches does not interrupt it, so that one borderline
detection, which another CPU's INT8 kernels keep or lose, cannot decide whether an object
seen for a second is confirmed before it meets another one) and in at
least `confirm_hits` frames in a row; only then does it get an id (1, 2, ... per tracker,
never reused). Until then it is no object: no id, no count, no event. A tentative track that
is missed waits like a lost one, for `lost_seconds`, and is then discarded (counted in
`discarded`), leaving no trace. Measured in seconds, not frames, so `--every N` or a dropped
live frame changes nothing; long enough that a box the detector sees for a moment (a shadow,
a frame-wide false vehicle, a flicker that another CPU's INT8 kernels let through or not)
never becomes an object, short against the seconds a real object is in view. A confirmed
track that is missed is lost; it ends once it has not been seen for `lost_seconds`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from pipeline.analytics import kalman
from pipeline.analytics.geometry import iou_matrix
from pipeline.counting_defaults import CONFIRM_SECONDS, MAX_SECONDS

_TIME_TOLERANCE = 1e-6  # seconds: 89/30 - 59/30 is not quite 1.0 in floating point


@dataclass(frozen=True)
class TrackerOptions:
    """ByteTrack's thresholds; the defaults are the paper's (τ_high 0.6, τ_low 0.1,
    ε 0.7, IoU below 0.2 refused, lost tracks kept 30 frames = 1 s at 30 fps). The second
    association asks for IoU 0.5 and the tentative one 0.3, as the authors' code does.
    `confirm_seconds` (stream seconds a new track must be matched before it is an object)
    replaces the paper's confirmation at the second frame: see the module's docstring."""

    high_score: float = 0.6
    low_score: float = 0.1
    new_track_score: float = 0.7
    min_iou: float = 0.2
    low_min_iou: float = 0.5
    tentative_min_iou: float = 0.3
    lost_seconds: float = 1.0
    confirm_seconds: float = CONFIRM_SECONDS
    confirm_hits: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.low_score <= self.high_score <= 1:
            raise ValueError("need 0 <= low_score <= high_score <= 1")
        if self.lost_seconds < 0 or self.confirm_hits < 1:
            raise ValueError("need lost_seconds >= 0 and confirm_hits >= 1")
        if not 0 <= self.confirm_seconds < MAX_SECONDS:
            raise ValueError(f"--confirm-seconds must be 0 or more, got {self.confirm_seconds}")


class TrackState(enum.IntEnum):
    TENTATIVE = 0  # seen, not confirmed yet: no id
    TRACKED = 1  # confirmed and matched in the latest frame
    LOST = 2  # confirmed, missed since `last_seen`


# The members as plain names, and their values as plain ints for numpy to compare with:
# looking an enum member up, or numpy probing an enum object, costs more than the rest of a
# frame's bookkeeping when a frame has one or two objects.
_TENTATIVE, _TRACKED, _LOST = TrackState.TENTATIVE, TrackState.TRACKED, TrackState.LOST
_TENTATIVE_CODE, _TRACKED_CODE, _LOST_CODE = int(_TENTATIVE), int(_TRACKED), int(_LOST)


class Track:
    """One followed object. `id` is None until the track is confirmed; `key` is unique per
    tracker for every track, tentative ones included. `box` is the latest detection box it
    joined, `first_box` the first; times are the tracker's timestamps in seconds."""

    __slots__ = (
        "box",
        "class_id",
        "first_box",
        "first_seen",
        "hits",
        "id",
        "key",
        "last_seen",
        "matched_seconds",
        "misses",
        "score",
        "state",
    )

    def __init__(self, key: int, box: np.ndarray, score: float, class_id: int, now: float):
        self.key = key
        self.id: int | None = None
        self.class_id = class_id
        self.state = _TENTATIVE
        self.box = self.first_box = box
        self.score = score
        self.hits = 1  # consecutive processed frames matched
        self.misses = 0  # consecutive processed frames missed
        self.matched_seconds = 0.0  # time between consecutive matched frames, added up
        self.first_seen = self.last_seen = now

    @property
    def confirmed(self) -> bool:
        return self.id is not None

    def __repr__(self) -> str:
        return (
            f"Track(id={self.id}, key={self.key}, class={self.class_id}, {self.state.name.lower()})"
        )


@dataclass(frozen=True, slots=True)
class TrackerStep:
    """What one frame did: `tracks[i]` is the track detection i joined (None if it joined
    none) and `ids[i]` that track's id at this frame (None if not confirmed yet); `ended`
    are the confirmed tracks that ended at this frame, `dropped` the tentative ones given
    up. Tracks change with later frames; the ids do not."""

    tracks: tuple[Track | None, ...]
    ids: tuple[int | None, ...]
    ended: tuple[Track, ...] = ()
    dropped: tuple[Track, ...] = ()


class ByteTracker:
    """Follows the objects of one stream; call `update` once per processed frame, in order.

    `tracks` are the live tracks (tentative, tracked, lost); row i of the motion state
    belongs to `tracks[i]`.
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self.tracks: list[Track] = []
        self.confirmed_count = 0  # ids given so far
        self.discarded = 0  # tentative tracks dropped before they were confirmed
        self._motion = np.zeros((0, 5, 4))  # kalman states, one row per track
        self._keys = 0
        self._now: float | None = None

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        timestamp: float,
    ) -> TrackerStep:
        """Associate one frame's detections (boxes (N, 4) xyxy pixels, scores (N,),
        class ids (N,)) taken at `timestamp` seconds; returns which track each joined."""
        o = self.options
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        class_ids = np.asarray(class_ids).astype(int).reshape(-1)
        elapsed = 0.0 if self._now is None else max(0.0, timestamp - self._now)
        self._now = timestamp if self._now is None else max(self._now, timestamp)
        if not self.tracks and not len(scores):  # nothing to follow, nothing seen
            return TrackerStep((), ())
        states = np.fromiter((t.state for t in self.tracks), int, len(self.tracks))
        track_classes = np.fromiter((t.class_id for t in self.tracks), int, len(self.tracks))
        self._predict(elapsed, states == _LOST_CODE)
        predicted = kalman.boxes_of(self._motion)

        def assign(rows: np.ndarray, dets: np.ndarray, min_iou: float):
            """Match track rows to detection indices: (pairs, rows left, detections left)."""
            if rows.size == 0 or dets.size == 0:
                return [], rows, dets
            iou = iou_matrix(predicted[rows], boxes[dets])
            iou[track_classes[rows][:, None] != class_ids[dets][None, :]] = 0.0
            # Imported at first use: SciPy's optimize takes 0.37 s of CPU to import, which every
            # process importing the sinks paid (each cluster worker, and the batch queue actor).
            from scipy.optimize import linear_sum_assignment

            r, c = linear_sum_assignment(1.0 - iou)
            good = iou[r, c] >= min_iou
            r, c = r[good], c[good]
            taken_rows = np.zeros(rows.size, bool)  # (np.zeros is C; np.ones is Python)
            taken_rows[r] = True
            taken_dets = np.zeros(dets.size, bool)
            taken_dets[c] = True
            pairs = list(zip(rows[r].tolist(), dets[c].tolist(), strict=True))
            return pairs, rows[~taken_rows], dets[~taken_dets]

        high = (scores >= o.high_score).nonzero()[0]
        low = ((scores >= o.low_score) & (scores < o.high_score)).nonzero()[0]
        # 1. confirmed tracks (tracked and lost) with high-score detections
        tentative = states == _TENTATIVE_CODE
        first, rest, high_left = assign((~tentative).nonzero()[0], high, o.min_iou)
        # 2. tracked (not lost) leftovers with low-score detections
        second, _, _ = assign(rest[states[rest] == _TRACKED_CODE], low, o.low_min_iou)
        # 3. tentative tracks with the high-score detections left
        third, _, high_left = assign(tentative.nonzero()[0], high_left, o.tentative_min_iou)

        pairs = first + second + third
        joined: list[Track | None] = [None] * len(scores)
        for row, det in pairs:
            joined[det] = self.tracks[row]
        self._correct(pairs, boxes, scores)
        ended, dropped = self._age({row for row, _ in pairs})
        starts = high_left[scores[high_left] >= o.new_track_score]
        for det, track in zip(
            starts, self._start(boxes[starts], scores[starts], class_ids[starts]), strict=True
        ):
            joined[det] = track
        ids = tuple(None if t is None else t.id for t in joined)
        return TrackerStep(tuple(joined), ids, ended, dropped)

    def finish(self) -> tuple[Track, ...]:
        """End every track (the stream is over): the confirmed ones, for their events."""
        ended = tuple(t for t in self.tracks if t.confirmed)
        self.discarded += len(self.tracks) - len(ended)
        self.tracks = []
        self._motion = self._motion[:0]
        return ended

    # -- steps -------------------------------------------------------------------------------

    def _predict(self, elapsed: float, lost: np.ndarray) -> None:
        if not self.tracks or elapsed <= 0:
            return
        if lost.any():  # as ByteTrack: the box of a lost track stops changing size
            self._motion[lost, kalman.VEL, 2:] = 0.0
        self._motion = kalman.predict(self._motion, elapsed)

    def _correct(self, pairs: list[tuple[int, int]], boxes: np.ndarray, scores: np.ndarray):
        if not pairs:
            return
        rows = np.array([row for row, _ in pairs], int)
        dets = np.array([det for _, det in pairs], int)
        self._motion[rows] = kalman.update(self._motion[rows], boxes[dets])
        for row, det in pairs:
            track = self.tracks[row]
            if track.hits or track.misses == 1:  # matched in the previous frame, or the one before
                track.matched_seconds += self._now - track.last_seen
            track.misses = 0
            track.box, track.score = boxes[det], float(scores[det])
            track.last_seen = self._now
            track.hits += 1
            if track.id is None and self._confirms(track):
                self.confirmed_count += 1
                track.id = self.confirmed_count
            if track.id is not None:
                track.state = _TRACKED

    def _age(self, matched: set[int]) -> tuple[tuple[Track, ...], tuple[Track, ...]]:
        """Mark missed confirmed tracks lost; end the lost ones and drop the tentative ones
        unseen for longer than `lost_seconds`: (ended, dropped)."""
        keep = ~np.zeros(len(self.tracks), bool)
        ended, dropped = [], []
        for row, track in enumerate(self.tracks):
            if row in matched:
                continue
            track.hits = 0
            track.misses += 1
            if track.state is not _TENTATIVE:
                track.state = _LOST
            if self._now - track.last_seen <= self.options.lost_seconds + _TIME_TOLERANCE:
                continue
            keep[row] = False
            if track.state is _TENTATIVE:
                self.discarded += 1
                dropped.append(track)
            else:
                ended.append(track)
        if not keep.all():
            self.tracks = [t for t, k in zip(self.tracks, keep, strict=True) if k]
            self._motion = self._motion[keep]
        return tuple(ended), tuple(dropped)

    def _confirms(self, track: Track) -> bool:
        o = self.options
        held = track.matched_seconds + _TIME_TOLERANCE
        return track.hits >= o.confirm_hits and held >= o.confirm_seconds

    def _start(self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> list[Track]:
        new = []
        for box, score, class_id in zip(boxes, scores, class_ids, strict=True):
            self._keys += 1
            track = Track(self._keys, box, float(score), int(class_id), self._now)
            if self._confirms(track):
                self.confirmed_count += 1
                track.id = self.confirmed_count
                track.state = _TRACKED
            new.append(track)
        if new:
            self.tracks += new
            self._motion = np.concatenate([self._motion, kalman.initiate(boxes)])
        return new
