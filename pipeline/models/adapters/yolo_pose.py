"""Ultralytics pose (YOLOv8/11-pose): output [1, 4 + C + K x D, N] = cx, cy, w, h, C class
scores (1: person), then K keypoints of (x, y[, visibility]) in input pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openvino as ov

from pipeline.detections import COCO_KEYPOINTS, Detections
from pipeline.models.adapters.base import ModelInfo, shape_text, static_dims
from pipeline.models.adapters.letterboxed import (
    LetterboxedAdapter,
    decode_channels_first,
    unletterbox,
)
from pipeline.models.adapters.yolo import Letterbox


def _kpt_shape(info: ModelInfo) -> tuple[int, int]:
    return info.kpt_shape or (17, 3)


def yolo_pose_misfit(model: ov.Model, info: ModelInfo) -> str | None:
    """Why `model` is not an Ultralytics pose model, or None when it is."""
    dims = static_dims(model) if len(model.outputs) == 1 else None
    if dims is None or len(dims) != 3 or dims[0] != 1 or dims[2] <= dims[1]:
        return (
            "expects one output [1, 4 + classes + keypoints, N]; "
            f"the model gives {shape_text(model)}"
        )
    if info.task != "pose" and info.kpt_shape is None:
        return "expects metadata.yaml with task: pose and kpt_shape"
    k, d = _kpt_shape(info)
    classes = dims[1] - 4 - k * d
    if classes < 1 or (info.names and len(info.names) != classes):
        return (
            f"reads {classes} classes with {k}x{d} keypoints but the model names {len(info.names)}"
        )
    return None


class YoloPoseAdapter(LetterboxedAdapter):
    """Detections as YOLOv8/11, plus keypoints (K, 3): x, y in source pixels, confidence."""

    name = "yolo-pose"

    def __init__(self, *args, kpt_shape: tuple[int, int] = (17, 3), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kpt_shape = kpt_shape
        self.keypoint_names = COCO_KEYPOINTS if kpt_shape[0] == 17 else ()

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        prediction = outputs[0][0]
        k, d = self.kpt_shape
        classes = prediction.shape[0] - 4 - k * d
        boxes, scores, class_ids, kept = decode_channels_first(
            prediction, classes, self.conf, self.iou
        )
        raw = prediction[4 + classes :, kept].T.reshape(-1, k, d)
        points = np.ones((len(kept), k, 3), np.float32)
        points[:, :, :2] = raw[:, :, :2]
        if d == 3:
            points[:, :, 2] = raw[:, :, 2]
        points[:, :, 0] = (points[:, :, 0] - meta.left) / meta.gain
        points[:, :, 1] = (points[:, :, 1] - meta.top) / meta.gain
        # clipped to the frame, as Ultralytics' predictor does (a confident point off the edge)
        np.clip(points[:, :, 0], 0, meta.src_w, out=points[:, :, 0])
        np.clip(points[:, :, 1], 0, meta.src_h, out=points[:, :, 1])
        return Detections(unletterbox(boxes, meta), scores, class_ids, self.names, keypoints=points)
