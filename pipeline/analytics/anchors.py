"""The point of a detection that crosses lines and stands in zones: a point of its box
(`bottom-center`, `center`) or, for pose models, one of its named keypoints
(`keypoint:left_ankle`).

A keypoint the model is not sure of (confidence below `KEYPOINT_MIN_CONF`: hidden, or out of
the frame) is not used as it is: the anchor is then where that keypoint last was within the
track's box (its offset as fractions of the box), or, before the track has shown it once,
where it typically is in an upright person's box. So an anchor never jumps from the feet to
the box's centre because one frame missed the ankle, which would count a crossing that was not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.analytics.geometry import Point
from pipeline.detections import COCO_KEYPOINTS

BOX_ANCHORS: tuple[str, ...] = ("bottom-center", "center")
KEYPOINT_PREFIX = "keypoint:"
KEYPOINT_MIN_CONF = 0.5  # as Ultralytics draws keypoints

# Where each COCO keypoint typically is in an upright person's box, as fractions (x, y).
_TYPICAL_Y = (
    0.08, 0.07, 0.07, 0.08, 0.08, 0.22, 0.22, 0.37, 0.37, 0.5, 0.5, 0.52, 0.52, 0.73, 0.73,
    0.95, 0.95,
)  # fmt: skip


def anchor_error(anchor: str) -> str | None:
    """Why `anchor` is not a valid anchor, or None."""
    if anchor in BOX_ANCHORS:
        return None
    if anchor.startswith(KEYPOINT_PREFIX):
        name = anchor[len(KEYPOINT_PREFIX) :]
        if name in COCO_KEYPOINTS:
            return None
        return f"unknown keypoint {name!r}; the COCO keypoints are {', '.join(COCO_KEYPOINTS)}"
    return f"choose one of {', '.join(BOX_ANCHORS)} or keypoint:NAME (pose models)"


def keypoint_of(anchor: str) -> str | None:
    """The keypoint name of a `keypoint:NAME` anchor, None for a box anchor."""
    return anchor[len(KEYPOINT_PREFIX) :] if anchor.startswith(KEYPOINT_PREFIX) else None


def box_anchor(box: Sequence[float], anchor: str) -> Point:
    """The anchor point of an xyxy box: middle of the bottom edge, or the centre."""
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y2 if anchor == "bottom-center" else (y1 + y2) / 2)


class KeypointAnchors:
    """Anchors at one named keypoint, per track (see the module's docstring)."""

    def __init__(self, name: str, keypoint_names: Sequence[str] = COCO_KEYPOINTS) -> None:
        self.index = list(keypoint_names).index(name)
        typical = (0.5, _TYPICAL_Y[self.index]) if len(keypoint_names) == 17 else (0.5, 0.5)
        self._typical: Point = typical
        self._offsets: dict[int, Point] = {}  # by track key: the keypoint's last offset

    def point(self, key: int, box: Sequence[float], keypoints: np.ndarray | None) -> Point:
        """Track `key`'s anchor for this frame's `box` and its keypoints (K, 3) or None."""
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if keypoints is not None:
            x, y, conf = (float(v) for v in keypoints[self.index])
            if conf >= KEYPOINT_MIN_CONF:
                if w > 0 and h > 0:
                    self._offsets[key] = ((x - x1) / w, (y - y1) / h)
                return x, y
        fx, fy = self._offsets.get(key, self._typical)
        return x1 + fx * w, y1 + fy * h

    def forget(self, key: int) -> None:
        self._offsets.pop(key, None)
