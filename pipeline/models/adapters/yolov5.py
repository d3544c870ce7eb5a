"""YOLOv5-style anchor-based detectors: output [1, N, 5 + C] = cx, cy, w, h (input pixels),
objectness, C class scores; score = objectness x class score, then class-aware NMS. The
letterbox is YOLOv5's (value 114, centred), the same geometry as Ultralytics' `predict`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import ModelInfo, shape_text, static_dims
from pipeline.models.adapters.letterboxed import (
    LetterboxedAdapter,
    centre_to_corners,
    unletterbox,
)
from pipeline.models.adapters.nms import nms
from pipeline.models.adapters.yolo import Letterbox

_MAX_WH = 7680
_MAX_DET = 300


def yolov5_misfit(model: ov.Model, info: ModelInfo) -> str | None:
    """Why `model` is not a YOLOv5-style detector, or None when it is."""
    dims = static_dims(model) if len(model.outputs) == 1 else None
    if dims is None or len(dims) != 3 or dims[0] != 1 or dims[2] <= 5 or dims[1] <= dims[2]:
        return (
            "expects one output [1, N, 5 + classes] with more candidates than channels; "
            f"the model gives {shape_text(model)}"
        )
    classes = dims[2] - 5
    if info.names and len(info.names) != classes:
        return f"reads {classes} classes but the model names {len(info.names)}"
    if info.end2end:
        return "expects raw candidates; metadata.yaml says end2end: true"
    if info.task not in (None, "detect"):
        return f"expects a detection model; metadata.yaml says task: {info.task}"
    return None


class Yolov5Adapter(LetterboxedAdapter):
    """Objectness-weighted class scores, confidence filter, class-aware NMS."""

    name = "yolov5"

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        prediction = outputs[0][0]  # (N, 5 + C)
        prediction = prediction[prediction[:, 4] > self.conf]
        if len(prediction) == 0:
            return Detections.empty(self.names)
        scores_all = prediction[:, 5:] * prediction[:, 4:5]
        class_ids = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(class_ids)), class_ids]
        keep = scores > self.conf
        prediction, scores, class_ids = prediction[keep], scores[keep], class_ids[keep]
        boxes = centre_to_corners(*prediction[:, :4].T)
        keep = nms(boxes + (class_ids * _MAX_WH)[:, None], scores, self.iou)[:_MAX_DET]
        boxes = unletterbox(boxes[keep], meta)
        return Detections(boxes, scores[keep].astype(np.float32), class_ids[keep], self.names)
