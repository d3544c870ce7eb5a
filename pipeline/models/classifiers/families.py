"""Choosing the classifier family that reads a model, and fitting it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import openvino as ov

from pipeline.models.classifiers.base import (
    ClassifierAdapter,
    ClassifierError,
    Output,
    classification_outputs,
    describe_outputs,
    metadata_multilabel,
)
from pipeline.models.classifiers.multilabel import MultiLabelAdapter
from pipeline.models.classifiers.softmax import SoftmaxAdapter

_FAMILIES = {"softmax": SoftmaxAdapter, "multilabel": MultiLabelAdapter}
CLASSIFIER_ADAPTER_NAMES = ("auto", *_FAMILIES)


def _class_score_outputs(model: ov.Model, model_label: str) -> list[Output]:
    outputs = classification_outputs(model)
    if not outputs:
        raise ClassifierError(
            f"{model_label} is not a classifier: it gives {describe_outputs(model)}, not class "
            "scores [1, C] or [1, C, 1, 1]; pass a classifier (a detector goes in --model)"
        )
    return outputs


def classifier_family(model: ov.Model, model_label: str = "the model") -> str:
    """The family that reads `model`: from rt_info `model_info/multilabel` when present, else
    from the activation producing its class-score outputs (Softmax or Sigmoid).

    Raises ClassifierError when the model gives no class scores (a detector, say)."""
    outputs = _class_score_outputs(model, model_label)
    multilabel = metadata_multilabel(model)
    if multilabel is not None:
        return "multilabel" if multilabel else "softmax"
    activations = {o.activation for o in outputs}
    if activations & {"softmax", "log_softmax"}:
        return "softmax"
    if "sigmoid" in activations:
        return "multilabel"
    raise ClassifierError(
        f"{model_label}: cannot tell whether its outputs ({describe_outputs(model)}) are softmax "
        "or sigmoid scores; pass --classify-adapter softmax or multilabel"
    )


def create_classifier_adapter(
    model: ov.Model,
    kind: str = "auto",
    *,
    model_name: str = "",
    labels: Mapping[str, Sequence[str]] | None = None,
    model_label: str = "the model",
) -> ClassifierAdapter:
    """The classifier family `kind` fitted to `model` ("auto": chosen from its outputs).

    `labels` maps output names to class names ("" for a model with one head); they override
    the model's rt_info and the documented order of `model_name` (the model's file stem)."""
    if kind not in CLASSIFIER_ADAPTER_NAMES:
        raise ClassifierError(
            f"unknown classifier adapter {kind!r}; choose one of "
            f"{', '.join(CLASSIFIER_ADAPTER_NAMES)}"
        )
    if kind == "auto":
        family = classifier_family(model, model_label)
    else:
        _class_score_outputs(model, model_label)  # refuses a detector even when forced
        family = kind
    # Chosen by the user or the model's metadata: read every class-score output, applying
    # the family's activation where the graph has none.
    every_output = kind != "auto" or metadata_multilabel(model) is not None
    return _FAMILIES[family](
        model, model_name=model_name, labels=labels or {}, forced=every_output,
        model_label=model_label,
    )  # fmt: skip
