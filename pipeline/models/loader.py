"""Finding and reading a model: IR, ONNX, TFLite, or an Ultralytics export folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openvino as ov
import yaml

from pipeline.errors import ModelError, openvino_message

MODEL_SUFFIXES = (".xml", ".onnx", ".tflite")
_HINT = "pass an OpenVINO .xml, an .onnx or .tflite file, or an Ultralytics *_openvino_model folder"


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk with the class names found beside or inside it."""

    path: Path
    model: ov.Model
    names: tuple[str, ...]


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


def read_names_file(path: Path) -> tuple[str, ...]:
    """Class names from Ultralytics `metadata.yaml` (`names:` mapping or list)."""
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"{path}: unreadable metadata ({error}); fix or remove it") from None
    names = meta.get("names") if isinstance(meta, dict) else None
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
    if labels is not None:
        names = parse_labels(labels)
    elif (model_file.parent / "metadata.yaml").is_file():
        names = read_names_file(model_file.parent / "metadata.yaml")
    else:
        names = _rt_info_names(model)
    return LoadedModel(model_file, model, names)
