"""Result containers: detections of one frame, and the result delivered to sinks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from pipeline.attributes import Attributes
from sources.frame import Frame

# The 17 COCO keypoints in the order pose models give them, and the skeleton joining them.
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# COCO skeleton, as pairs of keypoint indices.
COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Detections:
    """Detections of one frame as arrays: `boxes` (N, 4) x1 y1 x2 y2 in source pixels,
    `scores` (N,), `class_ids` (N,); `names` maps class ids to labels. `attributes` is empty
    without second-stage models, else one entry per detection (None: not classified).
    `masks` (N, H, W) bool at source resolution (segmentation models) and `keypoints`
    (N, K, 3) x, y in source pixels and confidence (pose models) are None otherwise."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: Sequence[str] = ()
    attributes: tuple[Attributes | None, ...] = ()
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4), got {self.boxes.shape}")
        if self.class_ids.shape != (n,):
            raise ValueError(f"class_ids must have shape ({n},), got {self.class_ids.shape}")
        if self.attributes and len(self.attributes) != n:
            raise ValueError(f"attributes must have {n} entries, got {len(self.attributes)}")
        if self.masks is not None and (
            self.masks.ndim != 3 or len(self.masks) != n or self.masks.dtype != np.bool_
        ):
            raise ValueError(
                f"masks must be bool of shape ({n}, H, W), got {self.masks.dtype} "
                f"{self.masks.shape}"
            )
        if self.keypoints is not None and (
            self.keypoints.ndim != 3 or len(self.keypoints) != n or self.keypoints.shape[2] != 3
        ):
            raise ValueError(f"keypoints must have shape ({n}, K, 3), got {self.keypoints.shape}")

    @classmethod
    def empty(cls, names: Sequence[str] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), names)

    def __len__(self) -> int:
        return len(self.scores)

    def label(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    def with_attributes(self, attributes: Sequence[Attributes | None]) -> Detections:
        return replace(self, attributes=tuple(attributes))

    def to_list(self, track_ids: Sequence[int | None] | None = None) -> list[dict]:
        """JSON-ready detections: label, class_id, score, box, `track_id` given the track ids
        (tracking on), and `attributes` when second-stage models ran (`{}` for a detection
        they did not classify)."""
        items = [
            {
                "label": self.label(int(class_id)),
                "class_id": int(class_id),
                "score": round(float(score), 5),
                "box": [round(float(v), 2) for v in box],
            }
            for box, score, class_id in zip(self.boxes, self.scores, self.class_ids, strict=True)
        ]
        if track_ids is not None:
            for item, track_id in zip(items, track_ids, strict=True):
                item["track_id"] = track_id
        for item, attributes in zip(items, self.attributes, strict=False):
            item["attributes"] = attributes.to_dict() if attributes is not None else {}
        if self.masks is not None:
            for item, mask in zip(items, self.masks, strict=True):
                item["mask"] = mask_polygons(mask)
        if self.keypoints is not None:
            for item, points in zip(items, self.keypoints, strict=True):
                item["keypoints"] = [
                    [round(float(x), 1), round(float(y), 1), round(float(c), 3)]
                    for x, y, c in points
                ]
        return items


def mask_polygons(mask: np.ndarray) -> list[list[int]]:
    """A mask as polygons in source pixels, COCO style `[[x1, y1, x2, y2, ...], ...]`: the
    outer contour of each part, simplified to within one pixel (holes are not kept)."""
    import cv2

    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
        if len(points) >= 3:
            polygons.append([int(v) for v in points.reshape(-1)])
    return polygons


class TrackEvent(Protocol):
    """What a result's events are (`pipeline.analytics.Event`; the data layer names only
    what it needs of them)."""

    type: str
    track_id: int

    def to_dict(self) -> dict: ...


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one frame, delivered to a stream's sinks in frame order.

    With tracking on, `track_ids[i]` is detection i's confirmed track id (None while its
    track is not confirmed), `events` what tracked objects did at this frame, and `overlay`
    what to draw of the tracking (a `pipeline.analytics.Overlay`: lines, zones, trails);
    without it, `track_ids` and `overlay` are None. With motion gating, `motion` holds the
    moving regions seen in the frame (x1, y1, x2, y2 in pixels) and `skipped` is
    `"no_motion"` for a frame not sent to the detector (its detections are then empty).
    """

    frame: Frame
    detections: Detections
    completed_at: float = field(default=0.0)
    track_ids: tuple[int | None, ...] | None = None
    events: tuple[TrackEvent, ...] = ()
    overlay: object | None = None
    skipped: str | None = None
    motion: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def stream(self) -> str:
        return self.frame.stream

    @property
    def latency_ms(self) -> float:
        """Capture (decoder returned the frame) to result, in milliseconds."""
        return (self.completed_at - self.frame.captured_at) * 1000.0

    def to_dict(self) -> dict:
        return {
            "stream": self.frame.stream,
            "frame": self.frame.index,
            "pts_ms": round(self.frame.pts_ms, 3),
            "captured_at": round(self.frame.captured_at, 3),
            "latency_ms": round(self.latency_ms, 2),
            "detections": self.detections.to_list(self.track_ids),
            **({"skipped": self.skipped} if self.skipped else {}),
        }
