"""Open Model Zoo detectors with `boxes` [N, 5] (x_min, y_min, x_max, y_max in input pixels,
conf) and `labels` [N] outputs (person-vehicle-bike-detection-2003/2004 and many others)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import ModelInfo, shape_text
from pipeline.models.adapters.ssd import SsdAdapter


def _output_index(model: ov.Model, name: str) -> int | None:
    for index, output in enumerate(model.outputs):
        if name in output.get_names():
            return index
    return None


def omz_boxes_misfit(model: ov.Model, info: ModelInfo) -> str | None:
    """Why `model` is not a boxes + labels detector, or None when it is."""
    boxes, labels = _output_index(model, "boxes"), _output_index(model, "labels")
    if len(model.outputs) == 2 and boxes is not None and labels is not None:
        shape = model.outputs[boxes].get_partial_shape()
        if shape.rank.get_length() == 2 and shape[1].is_static and shape[1].get_length() == 5:
            return None
    return f"expects outputs boxes [N, 5] and labels [N]; the model gives {shape_text(model)}"


class OmzBoxesAdapter(SsdAdapter):
    """Plain resize, BGR 0..255 (as SSD); boxes scaled from input to source pixels."""

    name = "omz-boxes"

    def prepare_model(self, model: ov.Model) -> ov.Model:
        self._boxes = _output_index(model, "boxes")
        self._labels = _output_index(model, "labels")
        return super().prepare_model(model)

    def postprocess(self, outputs: Sequence[np.ndarray], meta: tuple[int, int]) -> Detections:
        rows = outputs[self._boxes].reshape(-1, 5)
        labels = outputs[self._labels].reshape(-1)
        keep = rows[:, 4] > self.conf
        rows, labels = rows[keep], labels[keep]
        width, height = meta
        scale = np.array([width, height, width, height], np.float32) / np.array(
            [self._size[0], self._size[1], self._size[0], self._size[1]], np.float32
        )
        boxes = rows[:, :4].astype(np.float32) * scale
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        return Detections(boxes, rows[:, 4].astype(np.float32), labels.astype(int), self.names)
