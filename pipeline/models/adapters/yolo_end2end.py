"""End-to-end Ultralytics detectors (YOLO26, YOLOv10): output [1, K, 6] = x1, y1, x2, y2
(input pixels), score, class id; the final detections, so a confidence threshold and no NMS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import ModelInfo, shape_text, static_dims
from pipeline.models.adapters.letterboxed import LetterboxedAdapter, unletterbox
from pipeline.models.adapters.yolo import Letterbox


def yolo_end2end_misfit(model: ov.Model, info: ModelInfo) -> str | None:
    """Why `model` is not an end-to-end Ultralytics detector, or None when it is."""
    dims = static_dims(model) if len(model.outputs) == 1 else None
    if dims is None or len(dims) != 3 or dims[0] != 1 or dims[2] != 6:
        return f"expects one output [1, K, 6] (end-to-end); the model gives {shape_text(model)}"
    if info.end2end is False:
        return "expects an end-to-end export; metadata.yaml says end2end: false"
    if info.task not in (None, "detect"):
        return f"expects a detection model; metadata.yaml says task: {info.task}"
    return None


class YoloEnd2EndAdapter(LetterboxedAdapter):
    """YOLO26 / YOLOv10 decoding: keep rows above the confidence threshold."""

    name = "yolo-end2end"

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Letterbox) -> Detections:
        rows = outputs[0][0]
        rows = rows[rows[:, 4] > self.conf]
        boxes = unletterbox(rows[:, :4].astype(np.float32), meta)
        return Detections(boxes, rows[:, 4].astype(np.float32), rows[:, 5].astype(int), self.names)
