"""Postprocessing adapters, one module per model family, picked from the model's outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import openvino as ov

from pipeline.errors import AdapterError
from pipeline.models.adapters.base import ModelAdapter, input_hw
from pipeline.models.adapters.blazeface import BlazeFaceAdapter, blazeface_misfit
from pipeline.models.adapters.ssd import SsdAdapter, ssd_misfit
from pipeline.models.adapters.yolo import YoloAdapter, yolo_misfit

# name -> (why a model does not fit, factory(input_size, names, conf, iou))
_ADAPTERS: dict[str, tuple[Callable[[ov.Model], str | None], Callable[..., ModelAdapter]]] = {
    "ssd": (ssd_misfit, lambda size, names, conf, iou: SsdAdapter(size, names, conf)),
    "yolo": (yolo_misfit, lambda size, names, conf, iou: YoloAdapter(size, names, conf, iou)),
    "blazeface": (
        blazeface_misfit,
        lambda size, names, conf, iou: BlazeFaceAdapter(size, names, conf),
    ),
}

ADAPTER_NAMES = ("auto", *_ADAPTERS)


def create_adapter(
    model: ov.Model,
    kind: str = "auto",
    *,
    names: Sequence[str] = (),
    conf: float | None = None,
    iou: float = 0.7,
    model_label: str = "the model",
) -> ModelAdapter:
    """The adapter `kind` for `model`, or the first that fits when `kind` is "auto"."""
    if kind != "auto" and kind not in _ADAPTERS:
        raise AdapterError(f"unknown adapter {kind!r}; choose one of {', '.join(ADAPTER_NAMES)}")
    candidates = list(_ADAPTERS) if kind == "auto" else [kind]
    reasons = []
    for name in candidates:
        misfit, factory = _ADAPTERS[name]
        reason = misfit(model)
        if reason is None:
            try:
                height, width = input_hw(model)
            except ValueError as error:
                raise AdapterError(f"adapter {name} cannot use {model_label}: {error}") from None
            return factory((width, height), names, conf, iou)
        reasons.append(f"{name} {reason}")
    if kind == "auto":
        raise AdapterError(
            f"no adapter fits {model_label}: {'; '.join(reasons)}; "
            "pass a detection model with SSD, Ultralytics YOLO or BlazeFace outputs"
        )
    raise AdapterError(f"adapter {kind} does not fit {model_label}: {reasons[0]}")


__all__ = [
    "ADAPTER_NAMES",
    "BlazeFaceAdapter",
    "ModelAdapter",
    "SsdAdapter",
    "YoloAdapter",
    "create_adapter",
]
