"""Finding and reading a model: IR, ONNX, TFLite, or an Ultralytics export folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import openvino as ov
import yaml

from pipeline.errors import ModelError, openvino_message
from pipeline.models.adapters.base import ModelInfo

MODEL_SUFFIXES = (".xml", ".onnx", ".tflite")
_HINT = "pass an OpenVINO .xml, an .onnx or .tflite file, or an Ultralytics *_openvino_model folder"


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk with the class names found beside or inside it."""

    path: Path
    model: ov.Model
    names: tuple[str, ...]
    info: ModelInfo = field(default_factory=ModelInfo)


def find_model_file(path: Path) -> Path:
    """The model file for `path`: itself, or the single IR/ONNX/TFLite file in a folder."""
    if not path.exists():
        raise ModelError(f"model {path}: no such file or folder; {_HINT}")
    if path.is_file():
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise ModelError(f"model {path}: unsupported file type {path.suffix!r}; {_HINT}")
        return path
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
    xml = [p for p in found if p.suffix.lower() == ".xml"]
    if len(xml) == 1:
        return xml[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(f"model folder {path}: no .xml, .onnx or .tflite inside; {_HINT}")
    names = ", ".join(p.name for p in found)
    raise ModelError(f"model folder {path}: several models ({names}); pass one file")


def _read_metadata(path: Path) -> dict:
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"{path}: unreadable metadata ({error}); fix or remove it") from None
    return meta if isinstance(meta, dict) else {}


def read_model_info(path: Path, names: tuple[str, ...]) -> ModelInfo:
    """`task`, `end2end`, `kpt_shape` and `imgsz` from Ultralytics `metadata.yaml`."""
    meta = _read_metadata(path)
    end2end = meta.get("end2end")
    if end2end is None and isinstance(meta.get("args"), dict) and meta["args"].get("nms"):
        end2end = True
    kpt = meta.get("kpt_shape")
    imgsz = meta.get("imgsz")
    if isinstance(imgsz, int):
        imgsz = [imgsz, imgsz]
    return ModelInfo(
        names=names,
        task=meta.get("task"),
        end2end=bool(end2end) if end2end is not None else None,
        kpt_shape=(int(kpt[0]), int(kpt[1])) if isinstance(kpt, list) and len(kpt) == 2 else None,
        imgsz=(int(imgsz[0]), int(imgsz[1]))
        if isinstance(imgsz, list) and len(imgsz) == 2
        else None,
    )


def _rt_info_model_info(model: ov.Model, names: tuple[str, ...]) -> ModelInfo:
    """The IR's `rt_info/model_info` as OpenVINO model_api writes it (`model_type`)."""
    task = None
    if model.has_rt_info(["model_info", "model_type"]):
        kind = model.get_rt_info(["model_info", "model_type"]).astype(str).lower()
        task = {"yolo": "detect", "ssd": "detect", "yolov5": "detect"}.get(kind, kind)
    return ModelInfo(names=names, task=task)


def read_names_file(path: Path) -> tuple[str, ...]:
    """Class names from Ultralytics `metadata.yaml` (`names:` mapping or list)."""
    meta = _read_metadata(path)
    names = meta.get("names")
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names, key=int))
    if isinstance(names, list):
        return tuple(map(str, names))
    return ()


def parse_labels(value: str) -> tuple[str, ...]:
    """`--labels`: a file with one name per line, or a comma-separated list."""
    path = Path(value)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        return tuple(line.strip() for line in lines if line.strip())
    if "," not in value and ("/" in value or value.endswith((".txt", ".names"))):
        raise ModelError(f"labels file {value}: no such file; pass a file or a list like a,b,c")
    return tuple(name.strip() for name in value.split(","))


def _rt_info_names(model: ov.Model) -> tuple[str, ...]:
    if model.has_rt_info(["model_info", "labels"]):
        return tuple(model.get_rt_info(["model_info", "labels"]).astype(str).split())
    return ()


def load_model(core: ov.Core, path: str | Path, labels: str | None = None) -> LoadedModel:
    """Read the model at `path`. Names come from `labels`, else `metadata.yaml` beside the
    model, else the IR's `model_info/labels`, else class ids are used."""
    path = Path(path)
    model_file = find_model_file(path)
    try:
        model = core.read_model(model_file)
    except RuntimeError as error:
        raise ModelError(
            f"model {model_file}: OpenVINO cannot read it ({openvino_message(error)})"
        ) from None
    if len(model.inputs) != 1:
        raise ModelError(
            f"model {model_file}: has {len(model.inputs)} inputs; vapipe needs one image input"
        )
    metadata = model_file.parent / "metadata.yaml"
    if labels is not None:
        names = parse_labels(labels)
    elif metadata.is_file():
        names = read_names_file(metadata)
    else:
        names = _rt_info_names(model)
    info = (
        read_model_info(metadata, names)
        if metadata.is_file()
        else _rt_info_model_info(model, names)
    )
    return LoadedModel(model_file, model, names, info)


def fix_input_size(
    model: ov.Model, info: ModelInfo, input_size: tuple[int, int] | None, label: str
) -> None:
    """Give a dynamic image input a fixed [1, 3, H, W] (from `input_size` (W, H), else the
    metadata's `imgsz`), reshaping `model` in place before it is compiled."""
    shape = model.inputs[0].get_partial_shape()
    if shape.is_static and input_size is None:
        return
    if input_size is not None:
        height, width = input_size[1], input_size[0]
    elif info.imgsz is not None:
        height, width = info.imgsz
    else:
        raise ModelError(
            f"{label}: has a dynamic input {shape} and no imgsz in metadata.yaml; "
            "pass --input-size WxH"
        )
    try:
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([1, 3, height, width])})
    except RuntimeError as error:
        raise ModelError(
            f"{label}: cannot take input {width}x{height} ({openvino_message(error)}); "
            "pass another --input-size"
        ) from None
