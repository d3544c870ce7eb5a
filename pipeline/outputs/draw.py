"""Drawing detections and captions on frames: shared by the annotated-video sink and the demo."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.analytics.stream import Overlay
from pipeline.detections import COCO_SKELETON, Detections

# Distinct, saturated BGR colours; class i uses _PALETTE[i % len(_PALETTE)].
_PALETTE = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (211, 188, 0), (209, 99, 0),
    (255, 194, 0), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82),
    (255, 56, 203), (200, 149, 255), (199, 55, 255),
)  # fmt: skip
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[class_id % len(_PALETTE)]


def track_color(track_id: int) -> tuple[int, int, int]:
    """Neighbouring ids get distant colours."""
    return _PALETTE[(track_id * 7) % len(_PALETTE)]


def _scale(image: np.ndarray) -> float:
    """Line and text scale for the image size: 1.0 at 720 px height."""
    return max(0.4, image.shape[0] / 720)


def draw_label(
    image: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int]
) -> int:
    """Text on a filled box whose bottom-left corner is `origin`, kept inside the image;
    returns the box's bottom row."""
    scale = 0.5 * _scale(image)
    thickness = max(1, round(_scale(image)))
    (width, height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    x = min(max(0, origin[0]), max(0, image.shape[1] - width - 4))
    y = max(height + baseline + 2, origin[1])
    cv2.rectangle(image, (x, y - height - baseline - 2), (x + width + 4, y), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(
        image, text, (x + 2, y - baseline), _FONT, scale, text_color, thickness, cv2.LINE_AA
    )
    return y


def _line_height(image: np.ndarray) -> int:
    scale, thickness = 0.5 * _scale(image), max(1, round(_scale(image)))
    (_, height), baseline = cv2.getTextSize("Ag", _FONT, scale, thickness)
    return height + baseline + 2


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    thickness: int | None = None,
    track_ids: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Boxes, class labels and scores drawn onto `image` in place; returns `image`.

    Boxes are in source pixels: `scale` and `offset` place them where the frame was drawn at
    that scale (a tile of a mosaic), so lines stay crisp in their class colour. A detection's
    second-stage attributes ("red car") go on a line under its label. (OpenCV's Hershey
    fonts draw ASCII only, hence two lines rather than "vehicle 0.97 · red car".) With
    `track_ids`, a tracked box is labelled `#id` first and drawn in its track's colour.
    """
    thickness = thickness or max(1, round(2 * _scale(image)))
    if detections.masks is not None:
        draw_masks(image, detections, scale, offset, track_ids)
    if detections.keypoints is not None:
        draw_skeletons(image, detections.keypoints, scale, offset, thickness)
    attributes = detections.attributes or (None,) * len(detections)
    ids = track_ids if track_ids is not None else (None,) * len(detections)
    for box, score, class_id, attrs, track_id in zip(
        detections.boxes, detections.scores, detections.class_ids, attributes, ids, strict=True
    ):
        color = class_color(int(class_id)) if track_id is None else track_color(track_id)
        x1, x2 = (round(float(box[i]) * scale) + offset[0] for i in (0, 2))
        y1, y2 = (round(float(box[i]) * scale) + offset[1] for i in (1, 3))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        text = f"{detections.label(int(class_id))} {score:.2f}"
        text = text if track_id is None else f"#{track_id} {text}"
        bottom = draw_label(image, text, (x1, y1), color)
        caption = attrs.caption() if attrs is not None else ""
        if caption:
            draw_label(image, caption, (x1, bottom + _line_height(image)), color)
    return image


_MASK_ALPHA = 0.45
_KEYPOINT_MIN_CONF = 0.5
_SKELETON_COLOR = (255, 255, 255)
_KEYPOINT_COLOR = (0, 215, 255)


def draw_masks(
    image: np.ndarray,
    detections: Detections,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    track_ids: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Each detection's mask blended in translucently in its box's colour, in place. Masks are
    at source resolution; at another `scale` they are resized (nearest) to where the frame was
    drawn."""
    masks = detections.masks
    if masks is None or len(masks) == 0:
        return image
    src_h, src_w = masks.shape[1:]
    w, h = round(src_w * scale), round(src_h * scale)
    x0, y0 = offset
    region = image[y0 : y0 + h, x0 : x0 + w]
    ids = track_ids if track_ids is not None else (None,) * len(masks)
    colours = np.array(
        [class_color(int(c)) if t is None else track_color(t)
         for c, t in zip(detections.class_ids, ids, strict=True)],
        np.float32,
    )  # fmt: skip
    # Paint in one pass: each pixel takes the colour of the last mask covering it.
    covered = masks.any(axis=0)
    if (w, h) != (src_w, src_h):
        index = np.ascontiguousarray(masks.shape[0] - 1 - np.argmax(masks[::-1], axis=0))
        index = cv2.resize(index.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST)
        covered = cv2.resize(covered.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        covered = covered.astype(bool)
    else:
        index = masks.shape[0] - 1 - np.argmax(masks[::-1], axis=0)
    covered = covered[: region.shape[0], : region.shape[1]]
    index = index[: region.shape[0], : region.shape[1]]
    pixels = region[covered].astype(np.float32)
    region[covered] = (pixels * (1 - _MASK_ALPHA) + colours[index[covered]] * _MASK_ALPHA).astype(
        np.uint8
    )
    return image


def draw_skeletons(
    image: np.ndarray,
    keypoints: np.ndarray,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    thickness: int = 2,
) -> np.ndarray:
    """COCO skeletons (17 keypoints) or bare points (other layouts), in place; keypoints
    below confidence 0.5 are left out."""
    radius = max(2, thickness + 1)
    for points in keypoints:
        xy = [(round(float(x) * scale) + offset[0], round(float(y) * scale) + offset[1])
              for x, y, _ in points]  # fmt: skip
        seen = points[:, 2] >= _KEYPOINT_MIN_CONF
        if len(points) == 17:
            for a, b in COCO_SKELETON:
                if seen[a] and seen[b]:
                    cv2.line(image, xy[a], xy[b], _SKELETON_COLOR, thickness, cv2.LINE_AA)
        for point, visible in zip(xy, seen, strict=True):
            if visible:
                cv2.circle(image, point, radius, _KEYPOINT_COLOR, cv2.FILLED, cv2.LINE_AA)
    return image


_LINE_COLOR = (0, 215, 255)  # amber
_ZONE_COLOR = (255, 200, 0)  # sky blue


def draw_overlay(
    image: np.ndarray,
    overlay: Overlay,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Zones with their occupancy, lines with their in/out counts and an arrow on the side
    `in` goes to, and each track's trail, drawn onto `image` in place; returns `image`.
    Coordinates are source pixels, placed by `scale` and `offset` as in `draw_detections`."""

    def at(point: tuple[float, float]) -> tuple[int, int]:
        return round(point[0] * scale) + offset[0], round(point[1] * scale) + offset[1]

    thickness = max(1, round(2 * _scale(image)))
    for zone in overlay.zones:
        corners = np.array([at(p) for p in zone.points], np.int32)
        cv2.polylines(image, [corners], True, _ZONE_COLOR, thickness, cv2.LINE_AA)
        detail = ", ".join(f"{n} {label}" for label, n in zone.by_label)
        text = f"{zone.name}: {zone.occupants}" + (f" ({detail})" if detail else "")
        top = min(zone.points, key=lambda p: (p[1], p[0]))
        draw_label(image, text, at((top[0], top[1] + 1)), _ZONE_COLOR)
    for line in overlay.lines:
        start, end = at(line.start), at(line.end)
        cv2.line(image, start, end, _LINE_COLOR, thickness + 1, cv2.LINE_AA)
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        dx, dy = end[0] - start[0], end[1] - start[1]
        length = max(1.0, float(np.hypot(dx, dy)))
        reach = 30 * _scale(image)  # `in` goes to the left of start→end: (dy, -dx) on images
        tip = (round(middle[0] + dy / length * reach), round(middle[1] - dx / length * reach))
        base = (round(middle[0] - dy / length * reach), round(middle[1] + dx / length * reach))
        cv2.arrowedLine(image, base, tip, _LINE_COLOR, thickness, cv2.LINE_AA, tipLength=0.4)
        label_at = (round(middle[0]) + 6, round(middle[1]) - 6)
        draw_label(image, f"{line.name} in {line.count_in} out {line.count_out}", label_at,
                   _LINE_COLOR)  # fmt: skip
    for trail in overlay.trails:
        if len(trail.points) > 1:
            points = np.array([at(p) for p in trail.points], np.int32)
            cv2.polylines(image, [points], False, track_color(trail.track_id), thickness,
                          cv2.LINE_AA)  # fmt: skip
    return image


_MOTION_COLOR = (200, 200, 200)  # light grey: a debug view, under the detections


def draw_motion(
    image: np.ndarray,
    boxes: Sequence[tuple[float, float, float, float]],
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Motion gating's debug view, in place: the moving regions as thin grey boxes (source
    pixels, placed by `scale` and `offset` as in `draw_detections`)."""
    for x1, y1, x2, y2 in boxes:
        top_left = (round(x1 * scale) + offset[0], round(y1 * scale) + offset[1])
        bottom_right = (round(x2 * scale) + offset[0], round(y2 * scale) + offset[1])
        cv2.rectangle(image, top_left, bottom_right, _MOTION_COLOR, 1, cv2.LINE_4)
    return image


def draw_skipped(image: np.ndarray, reason: str) -> np.ndarray:
    """Why the detector did not see this frame ("no motion"), at its bottom left, in place."""
    draw_label(image, reason.replace("_", " "), (4, image.shape[0] - 8), _MOTION_COLOR)
    return image


def draw_result(
    image: np.ndarray,
    detections: Detections,
    track_ids: Sequence[int | None] | None = None,
    overlay: object | None = None,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    thickness: int | None = None,
) -> np.ndarray:
    """A result's tracking overlay (if any) under its boxes, drawn in place."""
    if isinstance(overlay, Overlay):
        draw_overlay(image, overlay, scale, offset)
    return draw_detections(image, detections, scale, offset, thickness, track_ids)


def annotated(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of `image` with the detections drawn (the decoded frame stays untouched)."""
    return draw_detections(image.copy(), detections)
