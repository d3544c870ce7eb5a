"""Ultralytics YOLOv8 / YOLO11 detectors: output [1, 4 + C, N], no NMS in the model.

Pre- and postprocessing follow Ultralytics `predict`: letterbox with value 114 (centred),
RGB 0..1, confidence filter, class-aware NMS, boxes mapped back to source pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import ModelInfo, nhwc_u8_input, shape_text, static_dims
from pipeline.models.adapters.nms import nms
from pipeline.option_table import IOU

_MAX_WH = 7680  # class offset for class-aware NMS, as Ultralytics
_MAX_NMS = 30000
_MAX_DET = 300


def yolo_misfit(model: ov.Model, info: ModelInfo | None = None) -> str | None:
    """Why `model` is not an Ultralytics YOLOv8/11 detector, or None when it is: the layout
    must have more candidates than channels, as many classes as the model names, and
    the metadata must not say end-to-end or another task."""
    info = info or ModelInfo()
    dims = static_dims(model) if len(model.outputs) == 1 else None
    if dims is None or len(dims) != 3 or dims[0] != 1 or dims[1] <= 4 or dims[2] <= dims[1]:
        return (
            "expects one output [1, 4 + classes, N] with more candidates than channels; "
            f"the model gives {shape_text(model)}"
        )
    if info.names and len(info.names) != dims[1] - 4:
        return f"reads {dims[1] - 4} classes but the model names {len(info.names)}"
    if info.end2end:
        return "expects raw candidates; metadata.yaml says end2end: true"
    if info.task not in (None, "detect"):
        return f"expects a detection model; metadata.yaml says task: {info.task}"
    return None


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one source size maps into the model input."""

    src_w: int
    src_h: int
    new_w: int
    new_h: int
    top: int
    bottom: int
    left: int
    right: int
    gain: float


@lru_cache(maxsize=64)
def letterbox_geometry(src_w: int, src_h: int, dst_w: int, dst_h: int) -> Letterbox:
    """Ultralytics `LetterBox(auto=False, center=True)` geometry, computed once per size."""
    gain = min(dst_h / src_h, dst_w / src_w)
    new_w, new_h = round(src_w * gain), round(src_h * gain)
    dw, dh = (dst_w - new_w) / 2, (dst_h - new_h) / 2
    return Letterbox(
        src_w,
        src_h,
        new_w,
        new_h,
        top=round(dh - 0.1),
        bottom=round(dh + 0.1),
        left=round(dw - 0.1),
        right=round(dw + 0.1),
        gain=gain,
    )


class YoloAdapter:
    """Ultralytics-compatible detection decoding."""

    name = "yolo"
    default_conf = 0.25

    def __init__(
        self,
        input_size: tuple[int, int],
        names: Sequence[str],
        conf: float | None = None,
        iou: float = IOU.default,
    ) -> None:
        self.names = tuple(names)
        self.conf = self.default_conf if conf is None else conf
        self.iou = iou
        self._size = input_size  # (width, height)

    def prepare_model(self, model: ov.Model) -> ov.Model:
        return nhwc_u8_input(model, bgr_to_rgb=True, scale=255.0)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        box = letterbox_geometry(image.shape[1], image.shape[0], *self._size)
        if (box.new_w, box.new_h) != (box.src_w, box.src_h):
            image = cv2.resize(image, (box.new_w, box.new_h), interpolation=cv2.INTER_LINEAR)
        padded = cv2.copyMakeBorder(
            image, box.top, box.bottom, box.left, box.right, cv2.BORDER_CONSTANT,
            value=(114, 114, 114),
        )  # fmt: skip
        return padded[None], box

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        prediction = outputs[0][0]  # (4 + C, N)
        class_scores = prediction[4:]
        best = class_scores.max(axis=0)
        candidates = np.flatnonzero(best > self.conf)
        if candidates.size == 0:
            return Detections.empty(self.names)
        scores = best[candidates]
        if candidates.size > _MAX_NMS:
            top = np.argsort(-scores, kind="stable")[:_MAX_NMS]
            candidates, scores = candidates[top], scores[top]
        class_ids = class_scores[:, candidates].argmax(axis=0)
        cx, cy, w, h = prediction[:4, candidates]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        keep = nms(boxes + (class_ids * _MAX_WH)[:, None], scores, self.iou)[:_MAX_DET]
        boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
        boxes -= np.array([meta.left, meta.top, meta.left, meta.top], np.float32)
        boxes /= meta.gain
        np.clip(boxes[:, 0::2], 0, meta.src_w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, meta.src_h, out=boxes[:, 1::2])
        return Detections(boxes, scores, class_ids, self.names)
