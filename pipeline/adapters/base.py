"""The adapter protocol: one model family's pre- and postprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import openvino as ov

from pipeline.detections import Detections


class ModelAdapter(Protocol):
    """Pre- and postprocessing for one model family; knows nothing of devices or threads.

    `prepare_model` adds in-model steps (layout, dtype, colour) with OpenVINO's
    PrePostProcessor; `preprocess` runs in the decoder thread and returns the input array plus
    whatever `postprocess` needs; `postprocess` runs in the inference callback.
    """

    name: ClassVar[str]

    def prepare_model(self, model: ov.Model) -> ov.Model: ...

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def postprocess(self, outputs: Sequence[np.ndarray], meta: Any) -> Detections: ...


def nhwc_u8_input(model: ov.Model, *, bgr_to_rgb: bool, scale: float | None) -> ov.Model:
    """Let the model take a u8 NHWC BGR frame: layout, dtype, colour and scale run in-model."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps = ppp.input().preprocess()
    if bgr_to_rgb:
        tensor.set_color_format(ColorFormat.BGR)
        steps.convert_color(ColorFormat.RGB)
    steps.convert_element_type(ov.Type.f32)
    if scale is not None:
        steps.scale(scale)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


def input_hw(model: ov.Model) -> tuple[int, int]:
    """Static (height, width) of an NCHW image input."""
    shape = model.inputs[0].get_partial_shape()
    if shape.rank.get_length() != 4 or not (shape[2].is_static and shape[3].is_static):
        raise ValueError(f"expected a static NCHW image input, got {shape}")
    return shape[2].get_length(), shape[3].get_length()
