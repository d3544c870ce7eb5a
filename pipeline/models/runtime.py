"""The inference runtime: owns the device, the compiled model and the async request pool."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import openvino as ov

from pipeline.errors import DeviceError, openvino_message
from pipeline.models.devices import DevicePlan, plan_device
from pipeline.option_table import DEVICE
from pipeline.thread_priority import call_at_lowest_priority

log = logging.getLogger(__name__)

CompletionCallback = Callable[[Sequence[np.ndarray], Any], None]

# Weight of the newest request in the moving average of the service time.
_SERVICE_TIME_WEIGHT = 0.05


def describe_devices(core: ov.Core) -> list[tuple[str, str]]:
    """(device, full name) for each device OpenVINO sees."""
    return [(d, str(core.get_property(d, "FULL_DEVICE_NAME"))) for d in core.available_devices]


class InferenceRuntime:
    """Compiles a model for a device string and runs it through an `AsyncInferQueue`.

    `on_complete(outputs, userdata)` runs in OpenVINO's callback thread with views of the output
    tensors, valid only during the call; an exception it raises is kept and re-raised by
    `raise_if_failed` on the caller's thread. `close` drains the pool and tears down in the one
    order that cannot deadlock on OpenVINO 2026.4 (see `close`).

    Each request may carry a `kind` (the scheduler's service class): the runtime counts the
    requests in flight per kind, measures the service time (submit to completion, moving
    average), and calls `on_released` once a request's callback has returned.

    On the CPU, `start_background` adds a second copy of the model for work that must yield
    to the first (batch beside live): its inference threads run at the lowest OS priority, so
    the OS preempts them whenever the first copy's threads have work, where one shared pool
    would make a request wait for whole inferences ahead of it. Requests go to it with
    `submit(..., background=True)`.
    """

    def __init__(
        self,
        core: ov.Core,
        model: ov.Model,
        device: str = DEVICE.default,
        nireq: int | None = None,
    ) -> None:
        # Kept for the background copy (an IR's weights are mapped from its file, not copied).
        self._core, self._model = core, model
        self.plan: DevicePlan = plan_device(device, core.available_devices)
        if self.plan.absent:
            log.warning(
                "device %s: %s not available here; running on %s",
                device,
                ", ".join(self.plan.absent),
                self.plan.device,
            )
        try:
            self._compiled = core.compile_model(
                model, self.plan.device, {"PERFORMANCE_HINT": self.plan.hint}
            )
        except RuntimeError as error:
            raise DeviceError(
                f"device {device}: compiling the model failed ({openvino_message(error)}); "
                f"devices here: {', '.join(core.available_devices)}"
            ) from None
        # Twice OpenVINO's optimal count: with exactly the optimal number, each request idles
        # while Python hands it its next frame. Measured with `vapipe bench`, 4 streams, CPU
        # (optimal 2): person-vehicle-bike e2e 145 -> 173-184 fps, YOLO11n 30.7 -> 32.0 fps.
        self.optimal_nireq = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.nireq = nireq or 2 * self.optimal_nireq
        self.execution_devices = tuple(self._compiled.get_property("EXECUTION_DEVICES"))
        self._n_outputs = len(self._compiled.outputs)
        self.input_shape = tuple(self._compiled.input(0).shape)
        self._pool: ov.AsyncInferQueue | None = ov.AsyncInferQueue(self._compiled, self.nireq)
        self._pool.set_callback(self._on_request_done)
        self._on_complete: CompletionCallback | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._submitted = 0
        self._completed = 0
        self._in_flight: Counter[Hashable] = Counter()  # by kind
        self.service_seconds = 0.0  # moving average, 0 before the first completion
        self._on_released: Callable[[], None] | None = None
        self._error: BaseException | None = None
        self._background: ov.AsyncInferQueue | None = None
        self._background_lock = threading.Lock()
        self.background_nireq = 0
        self._background_in_flight = 0

    def set_callback(
        self, on_complete: CompletionCallback, on_released: Callable[[], None] | None = None
    ) -> None:
        self._on_complete = on_complete
        self._on_released = on_released

    @property
    def has_background(self) -> bool:
        return self._background is not None

    def start_background(self) -> bool:
        """Compile the background copy (once; about as long as the first compile took) if
        the model runs on the CPU alone; whether there is one. Any thread."""
        with self._background_lock:  # not `_lock`: requests complete meanwhile
            if self._background is not None:
                return True
            if self.execution_devices != ("CPU",):
                return False  # other devices' threads only feed the device: no gain
            config = {"PERFORMANCE_HINT": self.plan.hint}
            compiled = call_at_lowest_priority(
                lambda: self._core.compile_model(self._model, self.plan.device, config)
            )
            if compiled is None:
                log.debug("cannot lower the priority of inference threads: no background copy")
                return False
            nireq = 2 * int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            pool = ov.AsyncInferQueue(compiled, nireq)  # the pool owns it: see `close`
            pool.set_callback(self._on_request_done)
            del compiled
            self.background_nireq = nireq
            self._background = pool
            return True

    def submit(
        self, tensor: np.ndarray, userdata: Any, kind: Hashable = None, background: bool = False
    ) -> None:
        """Start inference on `tensor` (shared, not copied: keep it alive in `userdata`), on
        the background copy if asked and there is one. Blocks while its pool is busy."""
        pool = (background and self._background) or self._pool
        background = pool is not self._pool
        with self._lock:
            self._in_flight[kind] += 1
            self._background_in_flight += background
        pool.start_async(
            tensor, (kind, background, time.perf_counter(), userdata), share_inputs=True
        )
        with self._lock:
            self._submitted += 1

    def in_flight(self, kind: Hashable = None) -> int:
        """Requests of `kind` submitted and not yet released."""
        return self._in_flight[kind]

    def in_flight_total(self) -> int:
        """Requests of every kind submitted and not yet released."""
        return self._in_flight.total()

    def background_in_flight(self) -> int:
        """Requests submitted to the background copy and not yet released."""
        return self._background_in_flight

    def wait_for_idle_request(self) -> None:
        """Wait until fewer than `nireq` requests of the first copy are in flight: `submit`
        to it will not block."""
        with self._lock:
            while self._in_flight.total() - self._background_in_flight >= self.nireq:
                self._idle.wait()

    def _on_request_done(self, request: ov.InferRequest, tagged: tuple) -> None:
        kind, background, submitted_at, userdata = tagged
        try:
            if self._error is None and self._on_complete is not None:
                outputs = [request.get_output_tensor(i).data for i in range(self._n_outputs)]
                self._on_complete(outputs, userdata)
        except BaseException as error:
            with self._lock:
                if self._error is None:
                    self._error = error
        finally:
            service = time.perf_counter() - submitted_at
            with self._lock:
                self._completed += 1
                self._in_flight[kind] -= 1
                self._background_in_flight -= background
                if not background:  # a background request's time counts its preemptions
                    self.service_seconds += (
                        _SERVICE_TIME_WEIGHT * (service - self.service_seconds)
                        if self.service_seconds
                        else service
                    )
                self._idle.notify_all()
            if self._on_released is not None:
                self._on_released()

    @property
    def failed(self) -> bool:
        return self._error is not None

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait until every submitted request has finished and its callback has returned."""
        self._pool.wait_all()
        if self._background is not None:
            self._background.wait_all()
        with self._lock:
            while self._completed < self._submitted:
                self._idle.wait(0.1)

    def close(self) -> None:
        """Drain, then let the pool be the last owner of the compiled model.

        `AsyncInferQueue`'s destructor releases the GIL (OpenVINO 2026.4), so when its requests
        hold the last reference, the CPU executor's worker threads are joined without the GIL
        and one still waiting for it can finish. Destroying the compiled model from Python
        instead joins them while holding the GIL: the exit deadlock.
        """
        if self._pool is None:
            return
        self.drain()
        self._compiled = None
        self._pool = None
        self._background = None
