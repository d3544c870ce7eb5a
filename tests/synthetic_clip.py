"""A clip with known identities: object crops from the shared clips pasted along known paths
onto an empty road, to count a tracker's identity switches against the truth.

Four cars cut from `car-detection.mp4` (each from a frame where it is whole) and two persons
cut from `one-by-one-person-detection.mp4`, at 60 % and 50 % of their size, on frame 150 of
the car clip (empty road), 12.5 frames per second for 10 s:

- cars 0 and 1 drive down and up side by side (lanes 85 px apart, boxes about 95 px
  wide), passing each other at t = 2.7 s;
- cars 2 and 3 drive down the same lane, 1.6 s apart;
- persons 4 and 5 walk across between the lanes in opposite directions, 15 px apart
  vertically, and cross each other (one hides most of the other) at t = 3.6 s;
- person 6 walks across car 3's lane in front of it (t = 6.6 .. 7.4 s).

Boxes are xyxy source pixels of what is visible in the frame (clipped to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
FPS = 12.5
SECONDS = 10.0
SIZE = (768, 432)


@dataclass(frozen=True)
class Actor:
    clip: str
    frame: int
    box: tuple[int, int, int, int]  # where the object is whole in that frame
    scale: float
    start: tuple[float, float]  # centre at t0
    end: tuple[float, float]  # centre at t1
    t0: float
    t1: float

    def centre(self, t: float) -> tuple[float, float] | None:
        if not self.t0 <= t <= self.t1:
            return None
        u = (t - self.t0) / (self.t1 - self.t0)
        return (
            self.start[0] + u * (self.end[0] - self.start[0]),
            self.start[1] + u * (self.end[1] - self.start[1]),
        )


CAR, PERSON = "car-detection.mp4", "one-by-one-person-detection.mp4"
ACTORS = (  # drawn in this order: later ones in front
    Actor(CAR, 80, (270, 72, 438, 338), 0.6, (110, -90), (110, 520), 0.0, 5.0),
    Actor(CAR, 215, (308, 45, 462, 292), 0.6, (195, 520), (195, -90), 0.5, 5.5),
    Actor(CAR, 205, (91, 47, 256, 351), 0.6, (620, -100), (620, 530), 4.0, 9.0),
    Actor(CAR, 330, (135, 14, 318, 310), 0.6, (620, -100), (620, 530), 5.6, 10.0),
    Actor(PERSON, 300, (383, 4, 542, 384), 0.5, (270, 330), (520, 330), 2.0, 4.5),
    Actor(PERSON, 1000, (383, 11, 524, 380), 0.5, (520, 345), (270, 345), 2.4, 4.9),
    Actor(PERSON, 600, (409, 1, 563, 390), 0.5, (430, 150), (810, 150), 5.5, 8.5),
)
CLASSES = (0, 0, 0, 0, 1, 1, 1)  # person-vehicle-bike-detection-2000: 0 vehicle, 1 person


def _read(clip: str, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(SHARED / clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok, f"{clip}: no frame {index}"
    return image


def _sprites() -> list[np.ndarray]:
    sprites = []
    for actor in ACTORS:
        x1, y1, x2, y2 = actor.box
        crop = _read(actor.clip, actor.frame)[y1:y2, x1:x2]
        crop = cv2.resize(crop, None, fx=actor.scale, fy=actor.scale, interpolation=cv2.INTER_AREA)
        sprites.append(crop)
    return sprites


def frames():
    """Yields (image, truth) per frame; truth is [(actor index, visible box xyxy)] of the
    actors at least half visible (not cut off by the frame's edge or hidden by another)."""
    background = _read(CAR, 150)
    sprites = _sprites()
    width, height = SIZE
    for index in range(round(SECONDS * FPS)):
        t = index / FPS
        image = background.copy()
        front = np.full((height, width), -1, np.int8)  # which actor each pixel shows
        placed = []
        for who, (actor, sprite) in enumerate(zip(ACTORS, sprites, strict=True)):
            centre = actor.centre(t)
            if centre is None:
                continue
            h, w = sprite.shape[:2]
            x1, y1 = round(centre[0] - w / 2), round(centre[1] - h / 2)
            cx1, cy1 = max(0, x1), max(0, y1)
            cx2, cy2 = min(width, x1 + w), min(height, y1 + h)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            image[cy1:cy2, cx1:cx2] = sprite[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
            front[cy1:cy2, cx1:cx2] = who
            placed.append((who, (cx1, cy1, cx2, cy2), w * h))
        truth = [
            (who, box)
            for who, box, area in placed
            if (front[box[1] : box[3], box[0] : box[2]] == who).sum() >= area / 2
        ]
        yield image, truth


def write_clip(path: Path) -> list[list[tuple[int, tuple[int, int, int, int]]]]:
    """Write the clip (MPEG-4 Part 2 in MP4) to `path`; returns the truth per frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    truths = []
    for image, truth in frames():
        writer.write(image)
        truths.append(truth)
    writer.release()
    return truths


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class IdentityScore:
    """CLEAR-MOT identity switches: a truth object matched (IoU >= 0.5) to a track id other
    than the one it was last matched to; `ids_per_actor` the distinct ids each actor got."""

    switches: int
    ids_per_actor: dict[int, int]
    track_ids: int  # distinct confirmed track ids in all
    matched: int  # truth boxes matched to a tracked detection
    truth_boxes: int


def identity_score(truths, tracked) -> IdentityScore:
    """`tracked` per frame: [(track id or None, class id, box xyxy)]; truth as `frames`
    gives it. A truth box matches only a detection of its actor's class."""
    from scipy.optimize import linear_sum_assignment

    last: dict[int, int] = {}
    ids: dict[int, set[int]] = {}
    switches = matched = 0
    every_id: set[int] = set()
    for truth, boxes in zip(truths, tracked, strict=True):
        boxes = [(tid, cls, box) for tid, cls, box in boxes if tid is not None]
        every_id.update(tid for tid, _, _ in boxes)
        if not truth or not boxes:
            continue
        iou = np.array(
            [[_iou(t[1], b[2]) if CLASSES[t[0]] == b[1] else 0.0 for b in boxes] for t in truth]
        )
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols, strict=True):
            if iou[r, c] < 0.5:
                continue
            who, tid = truth[r][0], boxes[c][0]
            matched += 1
            ids.setdefault(who, set()).add(tid)
            if who in last and last[who] != tid:
                switches += 1
            last[who] = tid
    return IdentityScore(
        switches,
        {who: len(v) for who, v in sorted(ids.items())},
        len(every_id),
        matched,
        sum(len(t) for t in truths),
    )
