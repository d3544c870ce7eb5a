"""Softmax heads with named classes: one or more outputs, each a distribution over its classes
(Open Model Zoo vehicle attributes: `color` over 7 colours, `type` over 4 vehicle types)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import openvino as ov

from pipeline.attributes import Head
from pipeline.models.classifiers.base import (
    ClassifierError,
    CropInput,
    HeadsAdapter,
    Output,
    classification_outputs,
    named_outputs,
    softmax,
)

_VEHICLE_COLORS = ("white", "gray", "yellow", "red", "green", "blue", "black")

# Class order of each output as the models' documentation gives it, by model name (file stem).
DOCUMENTED: dict[str, dict[str, tuple[str, ...]]] = {
    "vehicle-attributes-recognition-barrier-0039": {
        "color": _VEHICLE_COLORS,
        "type": ("car", "bus", "truck", "van"),
    },
    "vehicle-attributes-recognition-barrier-0042": {
        "color": _VEHICLE_COLORS,
        "type": ("car", "van", "truck", "bus"),
    },
}


def softmax_outputs(model: ov.Model, forced: bool = False) -> list[Output]:
    """The outputs this family reads: those a Softmax produces (with `forced`, every
    classification-shaped output, scores turned into probabilities here when needed)."""
    outputs = classification_outputs(model)
    if forced:
        return outputs
    return [o for o in outputs if o.activation in ("softmax", "log_softmax")]


class SoftmaxAdapter(HeadsAdapter):
    """Named softmax heads; each detection gets each head's most probable class."""

    name = "softmax"
    ACTIVATION = "softmax"
    _probabilities = staticmethod(softmax)

    def __init__(
        self,
        model: ov.Model,
        *,
        model_name: str,
        labels: Mapping[str, Sequence[str]],
        forced: bool = False,
        model_label: str = "the model",
    ) -> None:
        outputs = softmax_outputs(model, forced)
        names = named_outputs(
            model, outputs, self.ACTIVATION, given=labels,
            documented=DOCUMENTED.get(model_name, {}), model_label=model_label,
        )  # fmt: skip
        unnamed = [o.name for o in outputs if o.name not in names]
        if unnamed:
            raise ClassifierError(
                f"{model_label}: class names of output {', '.join(unnamed)} unknown (not in the "
                f"model's rt_info, not a documented model); pass --classify-labels "
                f"{unnamed[0]}=a,b,..."
            )
        self._outputs = tuple(outputs)
        self.heads = tuple(Head(o.name, names[o.name]) for o in outputs)
        self._input = CropInput(model, model_label)
