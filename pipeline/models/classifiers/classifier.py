"""A second-stage model at work: crops in, attributes out, through its own request pool."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov

from pipeline.attributes import Attributes, Head
from pipeline.errors import ModelError
from pipeline.models.classifiers.base import ClassifierAdapter, crop_box
from pipeline.models.classifiers.families import create_classifier_adapter
from pipeline.models.loader import load_model
from pipeline.models.runtime import InferenceRuntime
from pipeline.option_table import DEVICE

log = logging.getLogger(__name__)

OnClassified = Callable[[list[Attributes | None]], None]


@dataclass(eq=False)
class _Call:
    """One `submit`: the frame, its boxes, which to classify, and what has come back."""

    image: np.ndarray
    boxes: np.ndarray
    indices: tuple[int, ...]
    on_done: OnClassified
    results: list[Attributes | None] = field(default_factory=list)
    remaining: int = 0


class Classifier:
    """Classifies crops of frames with one model, compiled for its own request pool.

    `submit(image, boxes, indices, on_done)` returns at once unless more than `max_pending`
    crops are already waiting (then it waits for room: bounded memory, back-pressure on the
    caller). A worker thread crops and resizes (`cv2`), then hands the crops to the pool; when
    the last crop of a call is classified, `on_done` gets one entry per box (None for boxes
    not in `indices`), on OpenVINO's callback thread. An error there or in the worker is
    re-raised by `raise_if_failed` (and by the next `submit`). `classify` is the same path,
    waited for. Build one with `Classifier.load`; `close` it when done.
    """

    def __init__(
        self,
        model_path: Path,
        adapter: ClassifierAdapter,
        runtime: InferenceRuntime,
        max_pending: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.adapter = adapter
        self.runtime = runtime
        # A few crops per request queued behind those in flight keeps the pool full.
        self.max_pending = max_pending or 8 * runtime.nireq
        self.inferences = 0  # crops classified so far
        self._calls: deque[_Call] = deque()
        self._changed = threading.Condition()
        self._pending = 0  # crops submitted and not yet classified
        self._closing = False
        self._error: BaseException | None = None
        runtime.set_callback(self._on_complete)
        self._worker = threading.Thread(
            target=self._feed, name=f"classify-{self.name}", daemon=True
        )
        self._worker.start()

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        device: str = DEVICE.default,
        adapter: str = "auto",
        class_names: Mapping[str, Sequence[str]] | None = None,
        nireq: int | None = None,
        max_pending: int | None = None,
        core: ov.Core | None = None,
    ) -> Classifier:
        """Read `model`, refuse it unless it is a classifier, fit its family and compile it
        (VapipeError, one line, if any step fails)."""
        if not Path(model).exists():
            raise ModelError(
                f"classify model {model}: no such file or folder; pass a classifier's OpenVINO "
                ".xml, .onnx or .tflite file"
            )
        core = core or ov.Core()
        loaded = load_model(core, model)
        names = dict(class_names or {})
        if loaded.names:  # metadata.yaml (Ultralytics) or rt_info model_info/labels
            names.setdefault("", loaded.names)
        fitted = create_classifier_adapter(
            loaded.model, adapter, model_name=loaded.path.stem, labels=names,
            model_label=f"classify model {loaded.path}",
        )  # fmt: skip
        runtime = InferenceRuntime(core, fitted.prepare_model(loaded.model), device, nireq)
        return cls(loaded.path, fitted, runtime, max_pending)

    @property
    def name(self) -> str:
        return self.model_path.stem

    @property
    def heads(self) -> tuple[Head, ...]:
        return self.adapter.heads

    # -- callers' side -------------------------------------------------------------------------

    def submit(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        indices: Sequence[int],
        on_done: OnClassified,
    ) -> None:
        """Classify the crops of `boxes[i]` for i in `indices` (boxes x1 y1 x2 y2 in pixels of
        `image`, which must stay unchanged until `on_done`). With no indices, `on_done` is
        called here and now."""
        indices = tuple(int(i) for i in indices)
        if not indices:
            on_done([None] * len(boxes))
            return
        call = _Call(image, boxes, indices, on_done, [None] * len(boxes), len(indices))
        with self._changed:
            while self._pending and self._pending + len(indices) > self.max_pending:
                self._raise_if_failed_locked()
                self._changed.wait(0.1)
            self._raise_if_failed_locked()
            if self._closing:
                raise RuntimeError(f"classifier {self.name} is closed")
            self._pending += len(indices)
            self._calls.append(call)
            self._changed.notify_all()

    def classify(self, image: np.ndarray, boxes: np.ndarray) -> list[Attributes]:
        """Every box of `image` classified, waited for (tests, scripts)."""
        done = threading.Event()
        got: list[list[Attributes | None]] = []

        def keep(results: list[Attributes | None]) -> None:
            got.append(results)
            done.set()

        self.submit(image, np.asarray(boxes, np.float32).reshape(-1, 4), range(len(boxes)), keep)
        while not done.wait(0.1):
            self.raise_if_failed()
        return [r for r in got[0] if r is not None]

    @property
    def pending(self) -> int:
        """Crops submitted and not yet classified."""
        return self._pending

    @property
    def failed(self) -> bool:
        return self._error is not None or self.runtime.failed

    def raise_if_failed(self) -> None:
        with self._changed:
            self._raise_if_failed_locked()

    def _raise_if_failed_locked(self) -> None:
        if self._error is not None:
            raise self._error
        self.runtime.raise_if_failed()

    def drain(self) -> None:
        """Wait until every submitted crop is classified (or the classifier failed)."""
        with self._changed:
            while self._pending and not self.failed:
                self._changed.wait(0.1)
        self.runtime.drain()

    def close(self) -> None:
        """Finish the submitted work, stop the worker, release the pool and compiled model."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._worker.join()
        self.drain()
        self.runtime.close()

    # -- worker thread: crop, resize, hand to the pool -------------------------------------------

    def _feed(self) -> None:
        try:
            while (call := self._next_call()) is not None:
                for slot in call.indices:
                    tensor = self.adapter.preprocess(crop_box(call.image, call.boxes[slot]))
                    self.runtime.submit(tensor, (call, slot, tensor))  # tensor kept alive
                    if self.runtime.failed:
                        return
        except BaseException as error:
            log.debug("classifier %s worker failed", self.name, exc_info=True)
            with self._changed:
                self._error = error
                self._changed.notify_all()

    def _next_call(self) -> _Call | None:
        with self._changed:
            while not self._calls and not self._closing:
                self._changed.wait()
            return self._calls.popleft() if self._calls else None

    # -- OpenVINO's callback thread ------------------------------------------------------------

    def _on_complete(self, outputs: Sequence[np.ndarray], userdata: tuple) -> None:
        call, slot, _ = userdata
        try:
            attributes = self.adapter.postprocess(outputs)
            with self._changed:
                call.results[slot] = attributes
                call.remaining -= 1
                finished = call.remaining == 0
                self.inferences += 1
            if finished:
                call.on_done(call.results)
        finally:
            with self._changed:
                self._pending -= 1
                self._changed.notify_all()
