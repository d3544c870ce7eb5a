"""The model's options as one typed, frozen object, passed whole from the command line or the
service's config down to the nodes that load the model (light: no OpenVINO)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import option_table as opt

if TYPE_CHECKING:  # types only: the classifiers load OpenVINO and OpenCV
    from pipeline.models.classifiers import ClassifyOptions, ClassifySpec

# What `Detector.load` takes (the rest is the second stage, compiled by the pipeline).
_DETECTOR_FIELDS = ("device", "adapter", "conf", "iou", "nireq", "labels", "input_size")


@dataclass(frozen=True)
class DetectorOptions:
    """How the model is read, fitted and run (defaults: `pipeline.option_table`), and its
    second stage: `classify` specs (`[LABELS:]MODEL` or `ClassifySpec`) run on the crops of
    the detections, `classify_options` saying when (see `Pipeline`)."""

    device: str = opt.DEVICE.default
    adapter: str = opt.ADAPTER.default
    conf: float | None = opt.CONF.default
    iou: float = opt.IOU.default
    nireq: int | None = opt.NIREQ.default
    labels: str | None = opt.LABELS.default
    input_size: tuple[int, int] | None = None
    classify: Sequence[str | ClassifySpec] = ()
    classify_options: ClassifyOptions | None = None

    def load_settings(self) -> dict[str, Any]:
        """The keyword arguments of `Detector.load`."""
        return {name: getattr(self, name) for name in _DETECTOR_FIELDS}

    def with_absolute_labels(self) -> DetectorOptions:
        """The same, a labels file given by a relative path made absolute (for workers that
        do not share this process's working folder)."""
        if self.labels and Path(self.labels).is_file():
            return dataclasses.replace(self, labels=str(Path(self.labels).resolve()))
        return self
