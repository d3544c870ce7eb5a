"""Multi-label sigmoid attributes: independent probabilities, an attribute present above 0.5
(Open Model Zoo person attributes: `is_male`, `has_bag`, ... on output `453`)."""

from __future__ import annotations

import logging
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
    sigmoid,
)

log = logging.getLogger(__name__)

THRESHOLD = 0.5

# Attribute order of each output as the models' documentation gives it, by model name. Outputs
# not listed (0230's `456` and `459`, points whose colours are the clothing colours) are not
# attributes and are left out.
DOCUMENTED: dict[str, dict[str, tuple[str, ...]]] = {
    "person-attributes-recognition-crossroad-0230": {
        "453": (
            "is_male",
            "has_bag",
            "has_backpack",
            "has_hat",
            "has_longsleeves",
            "has_longpants",
            "has_longhair",
            "has_coat_jacket",
        ),
    },
}


def sigmoid_outputs(model: ov.Model, forced: bool = False) -> list[Output]:
    """The outputs this family may read: those a Sigmoid produces (with `forced`, every
    classification-shaped output, scores turned into probabilities here when needed)."""
    outputs = classification_outputs(model)
    if forced:
        return outputs
    return [o for o in outputs if o.activation == "sigmoid"]


class MultiLabelAdapter(HeadsAdapter):
    """Sigmoid attributes; the heads are the outputs whose attribute names are known."""

    name = "multilabel"
    ACTIVATION = "sigmoid"
    _probabilities = staticmethod(sigmoid)

    def __init__(
        self,
        model: ov.Model,
        *,
        model_name: str,
        labels: Mapping[str, Sequence[str]],
        forced: bool = False,
        model_label: str = "the model",
        threshold: float = THRESHOLD,
    ) -> None:
        outputs = sigmoid_outputs(model, forced)
        names = named_outputs(
            model, outputs, self.ACTIVATION, given=labels,
            documented=DOCUMENTED.get(model_name, {}), model_label=model_label,
        )  # fmt: skip
        if not names:
            listed = ", ".join(f"{o.name} [{o.classes}]" for o in outputs)
            raise ClassifierError(
                f"{model_label}: attribute names of outputs {listed} unknown (not in the "
                f"model's rt_info, not a documented model); pass --classify-labels "
                f"{outputs[0].name}=a,b,..."
            )
        skipped = [o.name for o in outputs if o.name not in names]
        if skipped:
            log.debug("%s: outputs %s have no attribute names; not read", model_label, skipped)
        self._outputs = tuple(o for o in outputs if o.name in names)
        self.heads = tuple(Head(o.name, names[o.name], True, threshold) for o in self._outputs)
        self._input = CropInput(model, model_label)
