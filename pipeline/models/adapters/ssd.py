"""Open Model Zoo SSD detectors: output `detection_out` [1, 1, N, 7], normalised boxes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import openvino as ov

from pipeline.detections import Detections
from pipeline.models.adapters.base import nhwc_u8_input


def ssd_misfit(model: ov.Model) -> str | None:
    """Why `model` is not an SSD detector, or None when it is."""
    shape = model.outputs[0].get_partial_shape()
    rank4 = shape.rank.is_static and shape.rank.get_length() == 4
    if rank4 and shape[3].is_static and shape[3].get_length() == 7:
        return None
    return f"expects an output [1, 1, N, 7] (detection_out); the model gives {shape}"


class SsdAdapter:
    """Plain resize to the model size, BGR 0..255; boxes scaled back to source pixels."""

    name = "ssd"
    default_conf = 0.5

    def __init__(
        self, input_size: tuple[int, int], names: Sequence[str], conf: float | None = None
    ) -> None:
        self.names = tuple(names)
        self.conf = self.default_conf if conf is None else conf
        self._size = input_size  # (width, height)

    def prepare_model(self, model: ov.Model) -> ov.Model:
        return nhwc_u8_input(model, bgr_to_rgb=False, scale=None)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        resized = cv2.resize(image, self._size, interpolation=cv2.INTER_LINEAR)
        return resized[None], (image.shape[1], image.shape[0])

    def postprocess(self, outputs: Sequence[np.ndarray], meta: tuple[int, int]) -> Detections:
        rows = outputs[0].reshape(-1, 7)
        ends = np.flatnonzero(rows[:, 0] < 0)  # image_id -1 marks the end of the list
        if ends.size:
            rows = rows[: ends[0]]
        rows = rows[rows[:, 2] > self.conf]
        width, height = meta
        boxes = rows[:, 3:7] * np.array([width, height, width, height], np.float32)
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        return Detections(boxes, rows[:, 2].copy(), rows[:, 1].astype(int), self.names)
