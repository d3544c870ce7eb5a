"""Postprocessing adapters, one module per model family, picked from the model's outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import openvino as ov

from pipeline.errors import AdapterError
from pipeline.models.adapters.base import ModelAdapter, ModelInfo, input_hw, shape_text
from pipeline.models.adapters.blazeface import BlazeFaceAdapter, blazeface_misfit
from pipeline.models.adapters.coco import COCO_NAMES
from pipeline.models.adapters.omz_boxes import OmzBoxesAdapter, omz_boxes_misfit
from pipeline.models.adapters.ssd import SsdAdapter, ssd_misfit
from pipeline.models.adapters.yolo import YoloAdapter, yolo_misfit
from pipeline.models.adapters.yolo_end2end import YoloEnd2EndAdapter, yolo_end2end_misfit
from pipeline.models.adapters.yolo_pose import YoloPoseAdapter, yolo_pose_misfit
from pipeline.models.adapters.yolo_seg import YoloSegAdapter, yolo_seg_misfit
from pipeline.models.adapters.yolov5 import Yolov5Adapter, yolov5_misfit
from pipeline.option_table import IOU

_Misfit = Callable[[ov.Model, ModelInfo], str | None]


def _v5_names(model: ov.Model, names: Sequence[str]) -> tuple[str, ...]:
    """YOLOv5 IRs carry no names; 80 classes are COCO's, in COCO order (`--labels` overrides)."""
    classes = model.outputs[0].get_partial_shape()[2].get_length() - 5
    return tuple(names) or (COCO_NAMES if classes == 80 else ())


# name -> (why a model does not fit, factory(model, info, input_size, names, conf, iou)),
# in the order "auto" tries them: the strictest layouts first.
_ADAPTERS: dict[str, tuple[_Misfit, Callable[..., ModelAdapter]]] = {
    "ssd": (
        lambda model, info: ssd_misfit(model),
        lambda model, info, size, names, conf, iou: SsdAdapter(size, names, conf),
    ),
    "omz-boxes": (
        omz_boxes_misfit,
        lambda model, info, size, names, conf, iou: OmzBoxesAdapter(size, names, conf),
    ),
    "yolo-end2end": (
        yolo_end2end_misfit,
        lambda model, info, size, names, conf, iou: YoloEnd2EndAdapter(size, names, conf, iou),
    ),
    "yolo-seg": (
        yolo_seg_misfit,
        lambda model, info, size, names, conf, iou: YoloSegAdapter(size, names, conf, iou),
    ),
    "yolo-pose": (
        yolo_pose_misfit,
        lambda model, info, size, names, conf, iou: YoloPoseAdapter(
            size, names, conf, iou, kpt_shape=info.kpt_shape or (17, 3)
        ),
    ),
    "yolo": (
        yolo_misfit,
        lambda model, info, size, names, conf, iou: YoloAdapter(size, names, conf, iou),
    ),
    "yolov5": (
        yolov5_misfit,
        lambda model, info, size, names, conf, iou: Yolov5Adapter(
            size, _v5_names(model, names), conf, iou
        ),
    ),
    "blazeface": (
        lambda model, info: blazeface_misfit(model),
        lambda model, info, size, names, conf, iou: BlazeFaceAdapter(size, names, conf),
    ),
}

ADAPTER_NAMES = ("auto", *_ADAPTERS)


def create_adapter(
    model: ov.Model,
    kind: str = "auto",
    *,
    names: Sequence[str] = (),
    conf: float | None = None,
    iou: float = IOU.default,
    model_label: str = "the model",
    info: ModelInfo | None = None,
) -> ModelAdapter:
    """The adapter `kind` for `model`, or the first that fits when `kind` is "auto"; `info`
    (names, task, end2end) lets each adapter refuse a layout it would misread."""
    info = info or ModelInfo(names=tuple(names))
    if kind != "auto" and kind not in _ADAPTERS:
        raise AdapterError(f"unknown adapter {kind!r}; choose one of {', '.join(ADAPTER_NAMES)}")
    candidates = list(_ADAPTERS) if kind == "auto" else [kind]
    reasons = []
    for name in candidates:
        misfit, factory = _ADAPTERS[name]
        reason = misfit(model, info)
        if reason is None:
            try:
                height, width = input_hw(model)
            except ValueError as error:
                raise AdapterError(f"adapter {name} cannot use {model_label}: {error}") from None
            return factory(model, info, (width, height), names, conf, iou)
        reasons.append(f"{name} {reason}")
    if kind == "auto":
        raise AdapterError(
            f"no adapter fits {model_label} (outputs {shape_text(model)}); known families: "
            f"{', '.join(_ADAPTERS)}; pass --adapter NAME to see why one does not fit"
        )
    raise AdapterError(f"adapter {kind} does not fit {model_label}: {reasons[0]}")


__all__ = [
    "ADAPTER_NAMES",
    "BlazeFaceAdapter",
    "ModelAdapter",
    "ModelInfo",
    "OmzBoxesAdapter",
    "SsdAdapter",
    "YoloAdapter",
    "YoloEnd2EndAdapter",
    "YoloPoseAdapter",
    "YoloSegAdapter",
    "Yolov5Adapter",
    "create_adapter",
]
