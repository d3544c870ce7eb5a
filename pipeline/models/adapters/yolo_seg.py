"""Ultralytics instance segmentation (YOLOv8/11-seg): outputs [1, 4 + C + M, N] (cx, cy, w, h,
C class scores, M mask coefficients) and prototypes [1, M, H/4, W/4]. Each kept detection's
mask is sigmoid(coefficients x prototypes), taken at source resolution, cropped to its box."""

from __future__ import annotations

import math
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
        """Each mask only inside its box (source columns x1 <= c < x2, rows likewise), from
        the prototype pixels that box needs: the work is the boxes' area, not the frame's
        times the detections. One small matrix-vector product per detection: a whole
        (k, M) x (M, H x W) product goes to OpenBLAS's threads, which wait for cores that
        OpenVINO keeps busy (measured: 9 ms instead of 0.2 ms under inference load)."""
        m, ph, pw = protos.shape
        k = len(coefficients)
        masks = np.zeros((k, meta.src_h, meta.src_w), bool)
        # Source pixels to prototype pixels (OpenCV's inverse map), through the letterbox.
        sx, sy = pw / self._size[0], ph / self._size[1]
        x0, y0 = meta.left * sx, meta.top * sy
        ax, ay = meta.new_w * sx / meta.src_w, meta.new_h * sy / meta.src_h
        bx, by = x0 + 0.5 * ax - 0.5, y0 + 0.5 * ay - 0.5
        for i, (c0, r0, c1, r1) in enumerate(np.ceil(boxes).astype(int).tolist()):
            if c1 <= c0 or r1 <= r0:
                continue
            # the prototype columns and rows bilinear sampling reads for these pixels
            u0 = min(pw - 1, max(0, math.floor(ax * c0 + bx) - 1))
            u1 = min(pw, max(u0 + 1, math.floor(ax * (c1 - 1) + bx) + 3))
            v0 = min(ph - 1, max(0, math.floor(ay * r0 + by) - 1))
            v1 = min(ph, max(v0 + 1, math.floor(ay * (r1 - 1) + by) + 3))
            region = protos[:, v0:v1, u0:u1].reshape(m, -1)
            logits = (coefficients[i] @ region).reshape(v1 - v0, u1 - u0)
            warp = np.array([[ax, 0, ax * c0 + bx - u0], [0, ay, ay * r0 + by - v0]])
            up = cv2.warpAffine(
                logits, warp, (c1 - c0, r1 - r0),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
            )  # fmt: skip
            np.greater(up, 0.0, out=masks[i, r0:r1, c0:c1])  # sigmoid(x) > 0.5
        return masks
