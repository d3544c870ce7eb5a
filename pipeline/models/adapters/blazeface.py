"""MediaPipe BlazeFace (short range) face detector: outputs regressors [1, 896, 16] and
classificators [1, 896, 1], decoded against SSD anchors, then weighted NMS, as MediaPipe's
face_detection_short_range graph does.

Preprocessing as MediaPipe: the frame letterboxed (centred, black padding) to 128x128, RGB,
scaled to [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import nhwc_u8_input
from pipeline.models.adapters.yolo import Letterbox, letterbox_geometry

# MediaPipe face_detection_short_range.pbtxt: SsdAnchorsCalculator and
# TensorsToDetectionsCalculator options.
_STRIDES = (8, 16, 16, 16)
_ANCHOR_OFFSET = 0.5
_ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 and the interpolated scale; fixed size 1x1
_SCORE_CLIP = 100.0
_MIN_SUPPRESSION_IOU = 0.3


def blazeface_misfit(model: ov.Model) -> str | None:
    """Why `model` is not a BlazeFace detector, or None when it is."""
    shapes = [o.get_partial_shape() for o in model.outputs]
    if len(shapes) == 2 and all(s.is_static and s.rank.get_length() == 3 for s in shapes):
        scores, boxes = sorted((tuple(s.to_shape()) for s in shapes), key=lambda s: s[-1])
        if scores[1] == boxes[1] and scores[2] == 1 and boxes[2] >= 4:
            return None
    shown = ", ".join(str(s) for s in shapes)
    return f"expects outputs [1, N, 16] and [1, N, 1]; the model gives {shown}"


@lru_cache(maxsize=4)
def ssd_anchors(input_size: int, count: int) -> np.ndarray:
    """Anchor centres (count, 2), normalised, as MediaPipe's SsdAnchorsCalculator makes them."""
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < len(_STRIDES):
        stride, per_cell = _STRIDES[layer], 0
        while layer < len(_STRIDES) and _STRIDES[layer] == stride:
            per_cell += _ANCHORS_PER_LAYER
            layer += 1
        grid = math.ceil(input_size / stride)
        for y in range(grid):
            for x in range(grid):
                cell = ((x + _ANCHOR_OFFSET) / grid, (y + _ANCHOR_OFFSET) / grid)
                centres += [cell] * per_cell
    anchors = np.array(centres, np.float32)
    if len(anchors) != count:
        raise ValueError(f"{len(anchors)} anchors for a {input_size} input; the model has {count}")
    return anchors


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes that
    overlap the best remaining one by more than `iou`; it keeps the best one's score."""
    order = np.argsort(-scores, kind="stable")
    kept_boxes, kept_scores = [], []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        top = order[0]
        x1 = np.maximum(boxes[top, 0], boxes[order, 0])
        y1 = np.maximum(boxes[top, 1], boxes[order, 1])
        x2 = np.minimum(boxes[top, 2], boxes[order, 2])
        y2 = np.minimum(boxes[top, 3], boxes[order, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        overlap = inter / np.maximum(areas[top] + areas[order] - inter, 1e-9)
        group = order[overlap > iou]
        group = group if group.size else order[:1]
        weights = scores[group][:, None]
        kept_boxes.append((boxes[group] * weights).sum(axis=0) / weights.sum())
        kept_scores.append(scores[top])
        order = order[overlap <= iou]
        order = order[order != top]
    return np.array(kept_boxes, np.float32).reshape(-1, 4), np.array(kept_scores, np.float32)


class BlazeFaceAdapter:
    """Face boxes from MediaPipe BlazeFace short range (the demo's default model)."""

    name = "blazeface"
    default_conf = 0.5

    def __init__(
        self, input_size: tuple[int, int], names: Sequence[str] = (), conf: float | None = None
    ) -> None:
        self.names = tuple(names) or ("face",)
        self.conf = self.default_conf if conf is None else conf
        self._size = input_size  # (width, height)

    def prepare_model(self, model: ov.Model) -> ov.Model:
        return nhwc_u8_input(model, bgr_to_rgb=True, mean=127.5, scale=127.5, layout="NHWC")

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        box = letterbox_geometry(image.shape[1], image.shape[0], *self._size)
        resized = cv2.resize(image, (box.new_w, box.new_h), interpolation=cv2.INTER_LINEAR)
        padded = cv2.copyMakeBorder(
            resized, box.top, box.bottom, box.left, box.right, cv2.BORDER_CONSTANT, value=0
        )
        return padded[None], box

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        first, second = outputs[0][0], outputs[1][0]
        regressors, logits = (first, second) if first.shape[-1] > 1 else (second, first)
        clipped = np.clip(logits[:, 0].astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)
        scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
        candidates = np.flatnonzero(scores >= self.conf)
        if candidates.size == 0:
            return Detections.empty(self.names)
        width, height = self._size
        anchors = ssd_anchors(width, len(scores))[candidates]
        raw = regressors[candidates, :4]
        cx = raw[:, 0] / width + anchors[:, 0]
        cy = raw[:, 1] / height + anchors[:, 1]
        w, h = raw[:, 2] / width, raw[:, 3] / height
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        boxes, kept = weighted_nms(boxes, scores[candidates], _MIN_SUPPRESSION_IOU)
        boxes *= np.array([width, height, width, height], np.float32)
        boxes -= np.array([meta.left, meta.top, meta.left, meta.top], np.float32)
        boxes /= meta.gain
        np.clip(boxes[:, 0::2], 0, meta.src_w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, meta.src_h, out=boxes[:, 1::2])
        return Detections(boxes, kept, np.zeros(len(kept), int), self.names)
