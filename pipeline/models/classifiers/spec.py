"""What to classify: `--classify [LABELS:]MODEL` specs, class names, and when to classify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.detections import Detections
from pipeline.models.classifiers.base import ClassifierError
from pipeline.models.loader import parse_labels


@dataclass(frozen=True)
class ClassifySpec:
    """One second-stage model: run `model` on the crops of detections labelled one of
    `labels` (every detection when empty). `adapter` picks its family ("auto": from its
    outputs); `class_names` names the classes of its outputs by output name ("" for a model
    with one head), overriding its metadata."""

    model: str | Path
    labels: tuple[str, ...] = ()
    adapter: str = "auto"
    class_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applies_to(self, label: str) -> bool:
        return not self.labels or label in self.labels


@dataclass(frozen=True)
class ClassifyOptions:
    """When crops are classified. Without tracking: every `every`-th analysed frame of a
    stream; with tracking: when a track is confirmed, then every `reclassify_seconds` while it
    lives. Crops narrower than `min_size` pixels are never classified."""

    every: int = 1
    min_size: int = 0
    reclassify_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be 1 or more, got {self.every}")
        if self.min_size < 0:
            raise ValueError(f"min_size must be 0 or more, got {self.min_size}")
        if not self.reclassify_seconds > 0:
            raise ValueError(f"reclassify_seconds must be positive, got {self.reclassify_seconds}")


def parse_classify_spec(text: str, adapter: str = "auto") -> ClassifySpec:
    """`[LABELS:]MODEL`: `vehicle:models/va.xml`, `vehicle,bike:va.xml` or `va.xml`.

    A text naming an existing file or folder is a model path even with a colon in it; a
    prefix before the first colon is LABELS when it holds no path separator."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and not Path(text).exists() and "/" not in prefix and "\\" not in prefix:
        labels = tuple(name.strip() for name in prefix.split(",") if name.strip())
        if not labels or not rest:
            raise ClassifierError(
                f"--classify {text}: expected [LABELS:]MODEL, e.g. vehicle:vehicle-attributes.xml"
            )
        return ClassifySpec(rest, labels, adapter)
    if not text:
        raise ClassifierError("--classify needs a model: [LABELS:]MODEL")
    return ClassifySpec(text, (), adapter)


def parse_class_names(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`--classify-labels [OUTPUT=]NAMES` values: NAMES a file (one per line) or a,b,c;
    OUTPUT names the model output they are for (omit it for a model with one output)."""
    names: dict[str, tuple[str, ...]] = {}
    for value in values:
        head, sep, rest = value.partition("=")
        if not sep or "/" in head or "," in head:
            head, rest = "", value
        parsed = parse_labels(rest.strip())
        if not parsed or not all(parsed):
            raise ClassifierError(
                f"--classify-labels {value}: expected [OUTPUT=]a,b,c or [OUTPUT=]FILE"
            )
        names[head.strip()] = parsed
    return names


def check_detector_labels(spec: ClassifySpec, detector_names: Sequence[str]) -> None:
    """Refuse LABELS that name no class of the detector (its names, or class ids as text when
    it has none)."""
    known = {Detections.empty(detector_names).label(i) for i in range(len(detector_names))}
    for label in spec.labels:
        if label in known or (not detector_names and label.isdigit()):
            continue
        have = (
            ", ".join(detector_names)
            if detector_names
            else "ids only (0, 1, ...; name them with --labels)"
        )
        raise ClassifierError(
            f"--classify {','.join(spec.labels)}:{spec.model}: the detector has no class "
            f"{label!r}; its classes: {have}"
        )
