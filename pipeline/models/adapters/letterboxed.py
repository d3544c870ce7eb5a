"""Shared by the Ultralytics-style adapters: letterbox in, boxes back to source pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.detections import Detections
from pipeline.models.adapters.yolo import Letterbox, YoloAdapter


def unletterbox(boxes: np.ndarray, meta: Letterbox) -> np.ndarray:
    """x1 y1 x2 y2 in model-input pixels -> source pixels, clipped to the frame (in place)."""
    boxes -= np.array([meta.left, meta.top, meta.left, meta.top], np.float32)
    boxes /= meta.gain
    np.clip(boxes[:, 0::2], 0, meta.src_w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, meta.src_h, out=boxes[:, 1::2])
    return boxes


def centre_to_corners(cx, cy, w, h) -> np.ndarray:
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


class LetterboxedAdapter(YoloAdapter):
    """Ultralytics preprocessing (letterbox 114, RGB 0..1); subclasses decode the outputs."""

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        raise NotImplementedError


_MAX_WH = 7680
_MAX_DET = 300


def decode_channels_first(
    prediction: np.ndarray, classes: int, conf: float, iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ultralytics [4 + classes + extra, N] candidates -> kept (boxes in input pixels, scores,
    class ids, candidate indices), after the confidence filter and class-aware NMS."""
    from pipeline.models.adapters.nms import nms

    class_scores = prediction[4 : 4 + classes]
    best = class_scores.max(axis=0)
    candidates = np.flatnonzero(best > conf)
    scores = best[candidates]
    class_ids = class_scores[:, candidates].argmax(axis=0)
    boxes = centre_to_corners(*prediction[:4, candidates])
    keep = nms(boxes + (class_ids * _MAX_WH)[:, None], scores, iou)[:_MAX_DET]
    return boxes[keep], scores[keep].astype(np.float32), class_ids[keep], candidates[keep]
