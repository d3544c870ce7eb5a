"""The adapter protocol: one model family's pre- and postprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import openvino as ov

from pipeline.detections import Detections


@dataclass(frozen=True)
class ModelInfo:
    """What a model says about itself (Ultralytics `metadata.yaml`, or the IR's
    `rt_info/model_info`): class names, task, whether NMS is inside, keypoint shape."""

    names: tuple[str, ...] = ()
    task: str | None = None
    end2end: bool | None = None
    kpt_shape: tuple[int, int] | None = None
    imgsz: tuple[int, int] | None = None  # (height, width)


def shape_text(model: ov.Model) -> str:
    """The model's outputs as text, for errors: `[1,300,6]` or `boxes [?,5], labels [?]`."""
    parts = []
    for output in model.outputs:
        shape = str(output.get_partial_shape()).replace(" ", "")
        names = output.get_names()
        parts.append(f"{sorted(names)[0]} {shape}" if len(model.outputs) > 1 and names else shape)
    return ", ".join(parts)


def static_dims(model: ov.Model, index: int = 0) -> tuple[int, ...] | None:
    """Output `index`'s dimensions when all are static, else None."""
    shape = model.outputs[index].get_partial_shape()
    if not shape.is_static:
        return None
    return tuple(d.get_length() for d in shape)


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


def nhwc_u8_input(
    model: ov.Model,
    *,
    bgr_to_rgb: bool,
    scale: float | None,
    mean: float | None = None,
    layout: str = "NCHW",
) -> ov.Model:
    """Let the model take a u8 NHWC BGR frame: layout, dtype, colour, mean and scale run
    in-model. `layout` is the model's own input layout."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps = ppp.input().preprocess()
    if bgr_to_rgb:
        tensor.set_color_format(ColorFormat.BGR)
        steps.convert_color(ColorFormat.RGB)
    steps.convert_element_type(ov.Type.f32)
    if mean is not None:
        steps.mean(mean)
    if scale is not None:
        steps.scale(scale)
    ppp.input().model().set_layout(ov.Layout(layout))
    return ppp.build()


def input_hw(model: ov.Model) -> tuple[int, int]:
    """Static (height, width) of an NCHW image input, or NHWC (TFLite) when the last
    dimension holds the 1 or 3 channels."""
    shape = model.inputs[0].get_partial_shape()
    if shape.rank.get_length() != 4:
        raise ValueError(f"expected a 4-d image input, got {shape}")
    nhwc = (
        shape[3].is_static
        and shape[3].get_length() in (1, 3)
        and not (shape[1].is_static and shape[1].get_length() in (1, 3))
    )
    h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    if not (h.is_static and w.is_static):
        raise ValueError(f"expected a static image input, got {shape}")
    return h.get_length(), w.get_length()
