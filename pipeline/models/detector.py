"""A detector: a model read, fitted with its adapter, and compiled for a device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from pipeline.models.adapters import ModelAdapter, create_adapter
from pipeline.models.detector_options import DetectorOptions
from pipeline.models.loader import fix_input_size, load_model
from pipeline.models.runtime import InferenceRuntime


@dataclass
class Detector:
    """What a pipeline runs: the adapter (pre/postprocessing) and the runtime (device, pool).

    Build one with `Detector.load`; share it between runs (as `vapipe bench` does) by passing
    it to `Pipeline` instead of a model path, and `close` it when done.
    """

    model_path: Path
    adapter: ModelAdapter
    runtime: InferenceRuntime

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        device: str = DetectorOptions.device,
        adapter: str = DetectorOptions.adapter,
        conf: float | None = None,
        iou: float = DetectorOptions.iou,
        nireq: int | None = None,
        labels: str | None = None,
        core: ov.Core | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> Detector:
        """Read `model`, pick or check the adapter, compile for `device` (VapipeError if not)."""
        core = core or ov.Core()
        loaded = load_model(core, model, labels)
        fix_input_size(loaded.model, loaded.info, input_size, f"model {loaded.path}")
        fitted = create_adapter(
            loaded.model, adapter, names=loaded.names, conf=conf, iou=iou,
            model_label=f"model {loaded.path}", info=loaded.info,
        )  # fmt: skip
        runtime = InferenceRuntime(core, fitted.prepare_model(loaded.model), device, nireq)
        return cls(loaded.path, fitted, runtime)

    @classmethod
    def open(
        cls, model: str | Path, options: DetectorOptions, core: ov.Core | None = None
    ) -> Detector:
        """`load` with the detector's part of `options` (its second stage is the pipeline's)."""
        return cls.load(model, core=core, **options.load_settings())

    def close(self) -> None:
        self.runtime.close()
