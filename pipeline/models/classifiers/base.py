"""What every classifier family shares: its protocol, reading the model's outputs, its input.

A classifier output ("head") is a [1, C] or [1, C, 1, 1] tensor of scores. Whether the scores
are a softmax (one class holds) or independent sigmoids (several may) is read from the graph:
the activation that produces the output, looking through the ops that only reshape or convert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import cv2
import numpy as np
import openvino as ov

from pipeline.attributes import Attributes, Head
from pipeline.errors import AdapterError
from pipeline.models.adapters.base import input_hw, nhwc_u8_input

Activation = Literal["softmax", "sigmoid", "log_softmax", "none"]

# Ops between an activation and the model's output that leave the scores' meaning unchanged.
_PASS_THROUGH = {"Convert", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "FakeQuantize"}
_ACTIVATIONS: dict[str, Activation] = {
    "Softmax": "softmax",
    "SoftMax": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
}


class ClassifierError(AdapterError):
    """A classify model is not a classifier, or its classes cannot be named."""


@dataclass(frozen=True, slots=True)
class Output:
    """A classification-shaped model output: its index, name, class count and activation."""

    index: int
    name: str
    classes: int
    activation: Activation


class ClassifierAdapter(Protocol):
    """Pre- and postprocessing of one classifier family; knows nothing of devices or threads.

    `prepare_model` adds the in-model input steps (layout, dtype, colour); `preprocess` turns a
    crop into the model input; `postprocess` turns the outputs (all of the model's, in order)
    into Attributes.
    """

    name: ClassVar[str]
    heads: tuple[Head, ...]

    def prepare_model(self, model: ov.Model) -> ov.Model: ...

    def preprocess(self, crop: np.ndarray) -> np.ndarray: ...

    def postprocess(self, outputs: Sequence[np.ndarray]) -> Attributes: ...


def _output_name(output: ov.Output, index: int) -> str:
    names = output.get_names()
    return output.get_any_name() if names else f"output{index}"


def _activation(output: ov.Output) -> Activation:
    node = output.get_node().input_value(0).get_node()  # the Result's producer
    for _ in range(8):
        kind = node.get_type_name()
        if kind in _ACTIVATIONS:
            return _ACTIVATIONS[kind]
        if kind not in _PASS_THROUGH or node.get_input_size() == 0:
            return "none"
        node = node.input_value(0).get_node()
    return "none"


def classification_outputs(model: ov.Model) -> list[Output]:
    """The outputs shaped like class scores: [1, C] or [1, C, 1, 1] with a static C."""
    found = []
    for index, output in enumerate(model.outputs):
        shape = output.get_partial_shape()
        if not shape.rank.is_static or shape.rank.get_length() not in (2, 4):
            continue
        dims = list(shape)
        if not dims[1].is_static or any(d.is_static and d.get_length() != 1 for d in dims[2:]):
            continue
        if dims[0].is_static and dims[0].get_length() != 1:
            continue
        name = _output_name(output, index)
        found.append(Output(index, name, dims[1].get_length(), _activation(output)))
    return found


def describe_outputs(model: ov.Model) -> str:
    return ", ".join(
        f"{_output_name(o, i)} {o.get_partial_shape()}" for i, o in enumerate(model.outputs)
    )


def metadata_labels(model: ov.Model, head: str, single: bool) -> tuple[str, ...]:
    """Class names from the model's rt_info: `model_info/labels_<head>`, or for a model with
    one head `model_info/labels` (Open Model Zoo / model_api convention: space-separated)."""
    keys = [["model_info", f"labels_{head}"]] + ([["model_info", "labels"]] if single else [])
    for key in keys:
        if model.has_rt_info(key):
            return tuple(model.get_rt_info(key).astype(str).split())
    return ()


def metadata_multilabel(model: ov.Model) -> bool | None:
    """`model_info/multilabel` from rt_info (model_api convention), or None when absent."""
    if not model.has_rt_info(["model_info", "multilabel"]):
        return None
    return model.get_rt_info(["model_info", "multilabel"]).astype(str).strip().lower() == "true"


def resolve_labels(
    model: ov.Model,
    outputs: Sequence[Output],
    *,
    given: Mapping[str, Sequence[str]],
    documented: Mapping[str, Sequence[str]],
    model_label: str,
) -> dict[str, tuple[str, ...]]:
    """Class names for each output: `given` (the user's, by head name; "" for a lone head),
    else the model's metadata, else the family's documented order. An output whose names are
    unknown is left out; a count that does not match the output is an error."""
    labels = {}
    for output in outputs:
        single = len(outputs) == 1
        names = tuple(given.get(output.name, given.get("", ()) if single else ()))
        source = "given"
        if not names:
            names, source = metadata_labels(model, output.name, single), "the model's rt_info"
        if not names:
            names, source = tuple(documented.get(output.name, ())), "documented"
        if not names:
            continue
        if len(names) != output.classes:
            raise ClassifierError(
                f"{model_label} output {output.name}: {len(names)} class names ({source}) "
                f"for {output.classes} scores; pass --classify-labels {output.name}=a,b,..."
            )
        labels[output.name] = names
    return labels


def crop_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The pixels of `box` (x1, y1, x2, y2 in source pixels): columns floor(x1) to ceil(x2),
    rows floor(y1) to ceil(y2), clipped to the image, at least one pixel each way."""
    height, width = image.shape[:2]
    x1 = min(max(0, math.floor(box[0])), width - 1)
    y1 = min(max(0, math.floor(box[1])), height - 1)
    x2 = max(x1 + 1, min(width, math.ceil(box[2])))
    y2 = max(y1 + 1, min(height, math.ceil(box[3])))
    return image[y1:y2, x1:x2]


class CropInput:
    """The model's image input: a crop resized (cv2, bilinear) to the model size as u8 NHWC
    BGR; layout, dtype and the model's colour order, mean and scale run in-model.

    Colour order, mean and scale come from rt_info `model_info/reverse_input_channels`,
    `mean_values`, `scale_values` (model_api convention); without them, BGR 0..255 as Open
    Model Zoo models take it.
    """

    def __init__(self, model: ov.Model, model_label: str) -> None:
        try:
            self.height, self.width = input_hw(model)
        except ValueError as error:
            raise ClassifierError(f"{model_label}: {error}") from None
        self._nhwc = _is_nhwc(model)
        self._reverse = _info(model, "reverse_input_channels", "false").lower() in ("true", "1")
        self._mean = _channel_values(_info(model, "mean_values", ""), neutral=0.0)
        self._scale = _channel_values(_info(model, "scale_values", ""), neutral=1.0)

    def prepare_model(self, model: ov.Model) -> ov.Model:
        return nhwc_u8_input(
            model, bgr_to_rgb=self._reverse, scale=self._scale, mean=self._mean,
            layout="NHWC" if self._nhwc else "NCHW",
        )  # fmt: skip

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        resized = cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return resized[None]


def _is_nhwc(model: ov.Model) -> bool:
    """Channels last (as `input_hw` decides): the last dimension holds 1 or 3, the second not."""
    shape = model.inputs[0].get_partial_shape()
    last = shape[3].is_static and shape[3].get_length() in (1, 3)
    return last and not (shape[1].is_static and shape[1].get_length() in (1, 3))


def _info(model: ov.Model, key: str, default: str) -> str:
    path = ["model_info", key]
    return model.get_rt_info(path).astype(str).strip() if model.has_rt_info(path) else default


def _channel_values(text: str, neutral: float) -> float | list[float] | None:
    """ "58.4 57.1 57.4" or "255" as PrePostProcessor takes them; None when absent or neutral."""
    values = [float(v) for v in text.replace(",", " ").split()]
    if not values or all(v == neutral for v in values):
        return None
    return values[0] if len(set(values)) == 1 else values


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def sigmoid(scores: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-scores))


def named_outputs(
    model: ov.Model,
    outputs: Sequence[Output],
    activation: str,
    *,
    given: Mapping[str, Sequence[str]],
    documented: Mapping[str, Sequence[str]],
    model_label: str,
) -> dict[str, tuple[str, ...]]:
    """The class names of a family's `outputs` (see `resolve_labels`); ClassifierError if the
    family found none (`activation`: the family's, for the message)."""
    if not outputs:
        raise ClassifierError(f"{model_label}: no {activation} output [1, C] or [1, C, 1, 1]")
    return resolve_labels(
        model, outputs, given=given, documented=documented, model_label=model_label
    )


class HeadsAdapter:
    """What the classifier families share once their heads are chosen: the crop input, and
    scores turned into probabilities unless the model's own `ACTIVATION` already made them.
    A family's `__init__` sets `_outputs`, `heads` and `_input`."""

    ACTIVATION: Activation
    _outputs: tuple[Output, ...]
    heads: tuple[Head, ...]
    _input: CropInput

    @staticmethod
    def _probabilities(scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare_model(self, model: ov.Model) -> ov.Model:
        return self._input.prepare_model(model)

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        return self._input.preprocess(crop)

    def postprocess(self, outputs: Sequence[np.ndarray]) -> Attributes:
        scores = []
        for output in self._outputs:
            values = outputs[output.index].reshape(-1).astype(np.float32)
            own = output.activation == self.ACTIVATION
            scores.append(values if own else self._probabilities(values))
        return Attributes(self.heads, tuple(scores))
