"""Ultralytics instance segmentation (YOLOv8/11-seg): outputs [1, 4 + C + M, N] (cx, cy, w, h,
C class scores, M mask coefficients) and prototypes [1, M, H/4, W/4]. Each kept detection's
mask is sigmoid(coefficients x prototypes), taken at source resolution, cropped to its box."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import ModelInfo, shape_text, static_dims
from pipeline.models.adapters.letterboxed import (
    LetterboxedAdapter,
    decode_channels_first,
    unletterbox,
)
from pipeline.models.adapters.yolo import Letterbox

_CV_MAX_CHANNELS = 512  # cv2.resize takes at most this many channels at once


def _layout(model: ov.Model) -> tuple[int, int] | None:
    """(prediction output index, prototypes output index) when the ranks fit."""
    if len(model.outputs) != 2:
        return None
    ranks = [o.get_partial_shape().rank.get_length() for o in model.outputs]
    if sorted(ranks) != [3, 4]:
        return None
    return ranks.index(3), ranks.index(4)


def yolo_seg_misfit(model: ov.Model, info: ModelInfo) -> str | None:
    """Why `model` is not an Ultralytics segmentation model, or None when it is."""
    layout = _layout(model)
    pred = static_dims(model, layout[0]) if layout else None
    protos = static_dims(model, layout[1]) if layout else None
    if pred is None or protos is None or pred[0] != 1 or pred[2] <= pred[1]:
        return (
            "expects outputs [1, 4 + classes + masks, N] and prototypes [1, masks, h, w]; "
            f"the model gives {shape_text(model)}"
        )
    classes = pred[1] - 4 - protos[1]
    if classes < 1:
        return f"reads {classes} classes from {shape_text(model)}"
    if info.names and len(info.names) != classes:
        return f"reads {classes} classes but the model names {len(info.names)}"
    if info.task not in (None, "segment"):
        return f"expects a segmentation model; metadata.yaml says task: {info.task}"
    return None


class YoloSegAdapter(LetterboxedAdapter):
    """Detections as YOLOv8/11, plus one bool mask per kept detection at source resolution."""

    name = "yolo-seg"

    def prepare_model(self, model: ov.Model) -> ov.Model:
        self._pred, self._protos = _layout(model)
        self._masks = static_dims(model, self._protos)[1]
        self._classes = static_dims(model, self._pred)[1] - 4 - self._masks
        return super().prepare_model(model)

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        prediction, protos = outputs[self._pred][0], outputs[self._protos][0]
        boxes, scores, class_ids, kept = decode_channels_first(
            prediction, self._classes, self.conf, self.iou
        )
        boxes = unletterbox(boxes, meta)
        coefficients = prediction[4 + self._classes :, kept].T  # (k, M)
        masks = self._masks_at_source(coefficients, protos, boxes, meta)
        return Detections(boxes, scores, class_ids, self.names, masks=masks)

    def _masks_at_source(
        self, coefficients: np.ndarray, protos: np.ndarray, boxes: np.ndarray, meta: Letterbox
    ) -> np.ndarray:
        m, ph, pw = protos.shape
        k = len(coefficients)
        if k == 0:
            return np.zeros((0, meta.src_h, meta.src_w), bool)
        logits = (coefficients @ protos.reshape(m, -1)).reshape(k, ph, pw)
        # The letterboxed image region, in prototype pixels.
        sx, sy = pw / self._size[0], ph / self._size[1]
        x0, y0 = meta.left * sx, meta.top * sy
        x1, y1 = (meta.left + meta.new_w) * sx, (meta.top + meta.new_h) * sy
        # One affine warp maps that region onto the source frame, for up to 512 masks at once.
        warp = np.array(
            [[(x1 - x0) / meta.src_w, 0, x0 + 0.5 * (x1 - x0) / meta.src_w - 0.5],
             [0, (y1 - y0) / meta.src_h, y0 + 0.5 * (y1 - y0) / meta.src_h - 0.5]],
            np.float64,
        )  # fmt: skip
        masks = np.empty((k, meta.src_h, meta.src_w), bool)
        for start in range(0, k, _CV_MAX_CHANNELS):
            chunk = np.ascontiguousarray(
                logits[start : start + _CV_MAX_CHANNELS].transpose(1, 2, 0)
            )
            up = cv2.warpAffine(
                chunk, warp, (meta.src_w, meta.src_h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
            )  # fmt: skip
            up = up.reshape(meta.src_h, meta.src_w, -1).transpose(2, 0, 1)
            masks[start : start + len(up)] = up > 0.0  # sigmoid(x) > 0.5
        cols, rows = np.arange(meta.src_w), np.arange(meta.src_h)
        inside_x = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])
        inside_y = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])
        masks &= inside_y[:, :, None] & inside_x[:, None, :]
        return masks
