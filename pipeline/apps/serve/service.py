"""The service: one open-ended pipeline whose cameras come and go, with its API, metrics,
MQTT publisher and live page.

`run` (on the main thread) runs the pipeline until `stop`; a change of model, device or
outputs makes it stop the pipeline and start a new one with every camera. Cameras are started,
restarted and stopped one by one (API, reload) while the others run on. Changes are serialised
by one lock, held while a removed stream drains; the pipeline's own threads (which that drain
waits for) never take it: what they touch is guarded by a second, short-held lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import cv2

from pipeline.analytics.events import Event
from pipeline.apps.demo.server import MosaicView
from pipeline.apps.serve import views
from pipeline.apps.serve.api import ApiServer, check_exposure, effective_token
from pipeline.apps.serve.camera_streams import camera_stream
from pipeline.apps.serve.config import (
    CameraConfig,
    ConfigError,
    ServiceConfig,
    check_evidence,
    diff_configs,
)
from pipeline.apps.serve.config_store import ConfigStore
from pipeline.apps.serve.controller import StreamExists, StreamNotFound
from pipeline.apps.serve.event_fan_out import EventFanOut
from pipeline.apps.serve.jobs import JobRequest, JobTable
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.apps.serve.mqtt import MqttPublisher
from pipeline.apps.serve.outputs import (
    SegmentEventsSink,
    SegmentJsonlSink,
    Segments,
    SegmentVideoSink,
    ServiceSink,
)
from pipeline.apps.serve.rates import ClassRates
from pipeline.apps.serve.recording import Recorders, evidence_plan, retention_for
from pipeline.detections import Result
from pipeline.engine.pipeline import Pipeline
from pipeline.engine.running import RunningPipeline
from pipeline.errors import VapipeError
from pipeline.models.classifiers.spec import (
    ClassifyOptions,
    ClassifySpec,
    parse_classify_spec,
)
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.draw import draw_detections
from pipeline.outputs.live_view import LiveView
from pipeline.outputs.sinks import Sink, StreamInfo
from pipeline.recording.evidence import EvidencePlan, EvidenceSink
from pipeline.recording.timeline import clock_of
from pipeline.summary import RunSummary, StreamSummary
from sources import (
    mask_credentials,
)

log = logging.getLogger(__name__)

STATE_REPUBLISH_SECONDS = 10.0  # retained state is refreshed this often (figures move)
PAGE_SIZE = (1280, 720)


def check_startable(config: ServiceConfig, running: Collection[str] = ()) -> None:
    """What can be checked before the pipeline starts: the model and file sources exist (but
    those of the cameras `running` on unchanged: a file deleted since does not stop the
    others), the API is not exposed without a token."""
    model = config.resolve(config.model.path)
    if not model.exists():
        raise ConfigError(f"model.path: no such model file or folder: {model}")
    for i, spec in enumerate(classify_specs(config)):
        if not Path(spec.model).exists():
            raise ConfigError(f"model.classify[{i}]: no such model file or folder: {spec.model}")
    for camera in config.cameras.values():
        if camera.name not in running:
            check_camera_source(config, camera, f"cameras.{camera.name}.source")
    check_exposure(config.http, effective_token(config.http))


def classify_specs(config: ServiceConfig) -> list[ClassifySpec]:
    """The second-stage models of `[model] classify`, their paths from the config's folder."""
    specs = []
    for text in config.model.classify:
        spec = parse_classify_spec(text, config.model.classify_adapter)
        specs.append(dataclasses.replace(spec, model=config.resolve(str(spec.model))))
    return specs


def detector_options(config: ServiceConfig) -> DetectorOptions:
    """The model's options from `[model]`, its files' paths from the config's folder."""
    model = config.model
    labels = model.labels
    if labels and "," not in labels and config.resolve(labels).is_file():
        labels = str(config.resolve(labels))
    return DetectorOptions(
        device=model.device, adapter=model.adapter, conf=model.conf, iou=model.iou,
        nireq=model.nireq, labels=labels, classify=tuple(classify_specs(config)),
        classify_options=ClassifyOptions(
            model.classify_every, model.classify_min_size, model.reclassify_seconds
        ),
    )  # fmt: skip


def open_pipeline(config: ServiceConfig, sinks: Sequence[Sink]) -> RunningPipeline:
    """The service's open-ended pipeline for `config`: here, or on its `[cluster]`."""
    model, options = config.resolve(config.model.path), detector_options(config)
    if config.cluster is None:
        return Pipeline(
            [], model, sinks=sinks, concurrency=max(1, len(config.cameras)), open_ended=True,
            detector_options=options,
        )  # fmt: skip
    from pipeline.apps.cluster.serve import ClusterPipeline

    address = config.cluster.address
    return ClusterPipeline(
        model, address=None if address == "local" else address,
        workers=config.cluster.workers, sinks=sinks, detector_options=options,
    )  # fmt: skip


def check_camera_source(config: ServiceConfig, camera: CameraConfig, where: str) -> None:
    check_evidence(config, camera, where.removesuffix("source"))
    if camera.is_file and not config.resolve(camera.source).is_file():
        raise ConfigError(f"{where}: no such video file: {config.resolve(camera.source)}")


class Service:
    """Implements `StreamController` for the API over a running pipeline.

    Its parts, each testable alone (and given here, or made from `config`): the running
    config and where changes go (`ConfigStore`), the events' fan-out to metrics, counts and
    MQTT (`EventFanOut`), the cameras' streams (`camera_stream`) and views (`views`)."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        read_only: bool = False,
        store: ConfigStore | None = None,
        metrics: ServiceMetrics | None = None,
        events: EventFanOut | None = None,
    ) -> None:
        check_startable(config)
        self.store = store or ConfigStore.for_config(config, read_only)
        self._lock = threading.RLock()  # serialises changes (API, reload, restarts)
        self._data = threading.Lock()  # guards the dicts below; never held while waiting
        self._stopping = threading.Event()
        self._restart_reason: str | None = None
        self._pipeline: RunningPipeline | None = None
        self._ended: dict[str, StreamSummary] = {}  # cameras whose stream ended, and how
        self._published: dict[str, tuple[str, float]] = {}  # camera -> (state, when)
        self._classes: dict[str, str] = {}  # camera -> its service class, as the engine runs it
        self._class_rates = ClassRates()
        self._segments = Segments()
        self.recorders = Recorders()
        self.retention = None
        self.last_summary: RunSummary | None = None
        self.metrics = metrics or ServiceMetrics()
        self.metrics.read_engine(lambda: views.engine_figures(self._pipeline))
        self.metrics.read_retention(self._retention_figures)
        self.view = LiveView(header=lambda fps, n: views.page_header(self._pipeline, fps, n))
        self.page = MosaicView(lambda: self.view.render(PAGE_SIZE), self._page_figures)
        self.mqtt = self._make_mqtt(config)
        self.events = events or EventFanOut(self.metrics, lambda: self.mqtt)
        media_root = config.resolve(config.http.media_root) if config.http.media_root else None
        output_root = config.resolve(config.output.dir) if config.output.dir else None
        self.jobs = JobTable()
        self.api = ApiServer(
            self, self.metrics, config.http, view=self.page, media_root=media_root,
            jobs=self, output_root=output_root,
        )  # fmt: skip

    @property
    def config(self) -> ServiceConfig:
        """The config as the service runs it (the store's)."""
        return self.store.config

    # -- running -----------------------------------------------------------------------------

    def run(self) -> RunSummary | None:
        """Serve until `stop`; returns the last pipeline's summary."""
        self.api.start()
        log.info("API and live view at %s", self.api.url)
        if self.mqtt is not None:
            self.mqtt.start()
        try:
            while not self._stopping.is_set():
                self._replace_retention()
                self._run_pipeline()
                with self._data:
                    reason, self._restart_reason = self._restart_reason, None
                if reason is None or self._stopping.is_set():
                    break
                log.info("%s: restarting the pipeline with every camera", reason)
        finally:
            self.recorders.close()
            if self.retention is not None:
                self.retention.stop()
            self.api.close()
            mqtt, self.mqtt = self.mqtt, None
            if mqtt is not None:
                mqtt.close()
        return self.last_summary

    def stop(self) -> None:
        """Stop serving (from any thread): the pipeline drains and its outputs are finished."""
        self._stopping.set()
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def _run_pipeline(self) -> None:
        config = self.config
        pipeline = self._open_pipeline(config)
        self._class_rates.clear()
        try:
            with self._lock:
                self._pipeline = pipeline
                if self._stopping.is_set():
                    pipeline.stop()
                for camera in self.config.cameras.values():
                    self._start_camera(camera)
            summary = pipeline.run(on_tick=lambda _: self._tick(), on_stream_end=self._ended_stream)
        finally:
            self._pipeline = None
            pipeline.close()
        self.last_summary = summary
        if config.output.dir:
            folder = config.resolve(config.output.dir)
            folder.mkdir(parents=True, exist_ok=True)
            summary.write_json(folder / "summary.json")

    def _open_pipeline(self, config: ServiceConfig) -> RunningPipeline:
        service = ServiceSink(self._segments, self._opened, self._result, self._events)
        sinks: list = [service, self.view]
        if config.output.dir:
            folder = config.resolve(config.output.dir)
            # the events, to MQTT and the file, get their clip and snapshot paths first
            evidence = EvidenceSink(self._evidence_plan)
            sinks = [evidence, *sinks, SegmentJsonlSink(folder, self._segments)]
            sinks.append(SegmentEventsSink(folder, self._segments, self._tracked))
            if config.output.save_video:
                sinks.append(SegmentVideoSink(folder, self._segments))
        pipeline = open_pipeline(config, sinks)
        info = pipeline.inference()
        self.metrics.describe_pipeline(
            str(info.model_path), info.device, info.execution_devices, info.adapter, info.nireq
        )
        log.info(
            "model %s (%s adapter), device %s on %s, %d requests, %d cameras",
            info.model_path, info.adapter, info.device, ", ".join(info.execution_devices),
            info.nireq, len(config.cameras),
        )  # fmt: skip
        return pipeline

    # -- cameras -----------------------------------------------------------------------------

    def _start_camera(self, camera: CameraConfig) -> None:
        """Start a camera's stream on the running pipeline (lock held); when the pipeline is
        being replaced, the new one starts it."""
        with self._data:
            self._ended.pop(camera.name, None)
            restarting = self._restart_reason is not None
        pipeline = self._pipeline
        if pipeline is None or restarting:
            return
        stream = camera_stream(self.config, camera)
        source = self.recorders.start(self.config, camera, stream.source)
        pipeline.add_stream(source, stream.options, service_class=stream.service_class)
        log.info("camera %s: started (%s)", camera.name, mask_credentials(camera.source))

    def _stop_camera(self, name: str) -> StreamSummary | None:
        """Stop a camera's stream and wait for its outputs to be finished (lock held)."""
        pipeline = self._pipeline
        summary = None
        if pipeline is not None:
            with contextlib.suppress(KeyError):  # it may have ended by itself
                summary = pipeline.remove_stream(name)
        with self._data:
            summary = summary or self._ended.get(name)
            self._ended.pop(name, None)
            self._published.pop(name, None)
            self._classes.pop(name, None)
        self.events.forget(name)
        self.recorders.stop(name)
        self.view.forget(name)
        self.metrics.forget_stream(name)
        if self.mqtt is not None:
            self.mqtt.forget_camera(name)
        log.info("camera %s: stopped", name)
        return summary

    # -- StreamController --------------------------------------------------------------------

    def list_streams(self) -> list[dict]:
        figures = self._figures()
        return [self._describe(name, figures) for name in list(self.config.cameras)]

    def service_classes(self) -> dict[str, dict]:
        pipeline = self._pipeline
        if pipeline is None:
            return {}
        running = [s.service_class for s in pipeline.stream_summaries().values()]
        views = {}
        for name, figures in pipeline.class_summaries().items():
            views[name] = {
                "streams": running.count(name), "frames": figures.frames,
                "dropped": figures.dropped, "fps": self._class_rates.fps(name),
                "latency_p50_ms": figures.latency_p50_ms,
                "latency_p95_ms": figures.latency_p95_ms,
            }  # fmt: skip
        return views

    def get_stream(self, name: str) -> dict:
        if name not in self.config.cameras:
            raise StreamNotFound(f"no camera named {name!r}")
        return self._describe(name, self._figures())

    def add_stream(self, camera: CameraConfig) -> dict:
        """Start, then save: a camera that cannot start is not saved, one that cannot be saved
        is stopped again."""
        with self._lock:
            if camera.name in self.config.cameras:
                raise StreamExists(f"a camera named {camera.name!r} exists; PUT to change it")
            check_camera_source(self.config, camera, "source")
            self._set_camera(camera.name, camera)
            try:
                self._start_camera(camera)
                self._save(lambda file: file.put_camera(camera))
            except BaseException:
                self._stop_camera(camera.name)
                self._set_camera(camera.name, None)
                raise
        return self.get_stream(camera.name)

    def replace_stream(self, camera: CameraConfig) -> dict:
        """Save, then restart: a change that cannot be saved leaves the camera running as it
        was; one that cannot start puts the old settings back (file and stream)."""
        with self._lock:
            old = self.config.cameras.get(camera.name)
            if old is None:
                raise StreamNotFound(f"no camera named {camera.name!r}; POST to add it")
            check_camera_source(self.config, camera, "source")
            self._save(lambda file: file.put_camera(camera))
            self._stop_camera(camera.name)
            self._set_camera(camera.name, camera)
            try:
                self._start_camera(camera)
            except BaseException:
                self._stop_camera(camera.name)
                self._set_camera(camera.name, old)
                with contextlib.suppress(VapipeError):
                    self._save(lambda file: file.put_camera(old))
                self._start_camera(old)
                raise
        return self.get_stream(camera.name)

    def remove_stream(self, name: str) -> dict:
        with self._lock:
            if name not in self.config.cameras:
                raise StreamNotFound(f"no camera named {name!r}")
            self._save(lambda file: file.remove_camera(name))
            self._set_camera(name, None)
            summary = self._stop_camera(name)
        return {"name": name, "summary": dataclasses.asdict(summary) if summary else None}

    def snapshot(self, name: str) -> bytes | None:
        if name not in self.config.cameras:
            raise StreamNotFound(f"no camera named {name!r}")
        latest = self.view.latest(name)
        if latest is None:
            return None
        image = draw_detections(latest.frame.image.copy(), latest.detections)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return data.tobytes() if ok else None

    def reload(self) -> dict:
        """Reread the config file and apply only the difference."""
        with self._lock:
            new = self.store.reread()  # read-only: the API's cameras stay
            unchanged = [n for n, c in new.cameras.items() if self.config.cameras.get(n) == c]
            check_startable(new, running=unchanged)
            diff = diff_configs(self.config, new)
            log.info("reload: %s", diff.describe())
            if diff.http_changed:
                log.warning("reload: [http] changed; it takes effect when the service restarts")
                new = dataclasses.replace(new, http=self.config.http)
            cluster_changed = new.cluster != self.config.cluster
            if diff.restarts_pipeline or cluster_changed:
                section = "output" if diff.output_changed else "cluster"
                reason = f"[{'model' if diff.model_changed else section}] changed"
                self.store.config = new
                self._restart(reason)
                if diff.mqtt_changed:
                    self._replace_mqtt()
            else:
                self.store.config = new
                for name in diff.removed + diff.changed:
                    self._stop_camera(name)
                for name in diff.changed + diff.added:
                    self._start_camera(new.cameras[name])
                if diff.mqtt_changed:
                    self._replace_mqtt()
        return {
            "added": list(diff.added), "removed": list(diff.removed),
            "changed": list(diff.changed), "pipeline_restarted": diff.restarts_pipeline,
            "http_needs_restart": diff.http_changed,
        }  # fmt: skip

    # -- JobController -----------------------------------------------------------------------

    def list_jobs(self) -> list[dict]:
        return [self.jobs.describe(job_id) for job_id in self.jobs.ids()]

    def get_job(self, job_id: str) -> dict:
        return self.jobs.describe(job_id)

    def start_job(self, request: JobRequest) -> dict:
        job = self.jobs.prepare(request)  # the folder scan, without the lock
        with self._lock:
            pipeline = self._pipeline
            if pipeline is None or self._stopping.is_set():
                raise VapipeError("the pipeline is not running (restarting or stopping)")
            view = self.jobs.start(pipeline, request, job)
        log.info("batch %s: %s into %s", view["id"], ", ".join(view["input"]), view["out"])
        return view

    def stop_job(self, job_id: str) -> dict:
        return self.jobs.stop(job_id)

    def health(self) -> dict:
        with self._data:
            restarting = self._restart_reason is not None
        mqtt = self.mqtt
        return {
            "ok": self._pipeline is not None and not restarting,
            "cameras": len(self.config.cameras),
            "mqtt_connected": mqtt.connected if mqtt is not None else None,
        }

    # -- helpers (lock held where said) -------------------------------------------------------

    def _set_camera(self, name: str, camera: CameraConfig | None) -> None:
        """Put (or with None, drop) a camera in the running config (lock held)."""
        self.store.set_camera(name, camera)

    def _save(self, change) -> None:
        self.store.save(change)

    def _restart(self, reason: str) -> None:
        with self._data:
            self._restart_reason = reason
        if self._pipeline is not None:
            log.info("%s: stopping the pipeline to start it again", reason)
            self._pipeline.stop()

    def _replace_mqtt(self) -> None:
        mqtt, self.mqtt = self.mqtt, self._make_mqtt(self.config)
        if mqtt is not None:
            mqtt.close()
        if self.mqtt is not None:
            self.mqtt.start()
            with self._data:
                self._published.clear()  # every state again, on the new connection

    def _evidence_plan(self, camera: str) -> EvidencePlan | None:
        """Where a camera's clips and snapshots go; those not written are told."""
        plan = evidence_plan(self.config, camera)
        if plan is None:
            return None
        return dataclasses.replace(
            plan,
            clock=clock_of(self.recorders.get(camera)),
            on_failure=functools.partial(self._no_evidence, camera),
        )

    def _no_evidence(self, camera: str, kind: str) -> None:
        """A clip or a snapshot of `camera` could not be written (a full disk, say): counted,
        and an `evidence_failed` event on MQTT and the live event stream, so that it is seen
        where the events are."""
        self.metrics.count_evidence_failed(camera, kind)
        event = {"stream": camera, "type": "evidence_failed", "kind": kind,
                 "captured_at": round(time.time(), 3)}  # fmt: skip
        self.publish_event(camera, event)

    def _retention_figures(self) -> dict[str, dict]:
        retention = self.retention
        return {} if retention is None else retention.metrics()

    def _replace_retention(self) -> None:
        """Retention as `[recording]` says now (at each pipeline start: a change of it
        restarts the pipeline)."""
        if self.retention is not None:
            self.retention.stop()
        self.retention = retention_for(self.config)
        if self.retention is not None:
            self.retention.start()

    def _make_mqtt(self, config: ServiceConfig) -> MqttPublisher | None:
        if config.mqtt is None:
            return None
        return MqttPublisher(
            config.mqtt, on_dropped=self.metrics.count_mqtt_dropped, base_dir=config.base_dir
        )

    # -- figures -----------------------------------------------------------------------------

    def _figures(self) -> dict[str, views.CameraFigures]:
        """Per camera: its running figures, or how it ended."""
        with self._data:
            ended = dict(self._ended)
        fps = {s["name"]: s["fps"] for s in self.view.figures()["streams"]}
        return views.camera_figures(self._pipeline, ended, fps)

    def _describe(self, name: str, figures: dict[str, views.CameraFigures]) -> dict:
        camera = self.config.cameras.get(name)
        found = figures.get(name, views.CameraFigures())
        return views.describe_camera(name, camera, found, self.events.counts(name))

    def _page_figures(self) -> dict:
        figures = self.view.figures()
        states = {
            name: views.camera_state(f.summary, f.status) for name, f in self._figures().items()
        }
        for stream in figures["streams"]:
            stream["state"] = states.get(stream["name"], "stopped")
        return figures

    # -- callbacks from the pipeline ---------------------------------------------------------

    def publish_event(self, camera: str, event: dict) -> None:
        """An event of the tracking layer, to the fan-out (`EventFanOut.publish`: metrics,
        counts, MQTT) and the API's live event stream. Called in frame order per camera, by
        the service's sink (`ServiceSink.write_events`)."""
        self.events.publish(camera, event)
        self.api.publish_event(camera, event)  # the live event stream's clients

    def _tracked(self, name: str) -> bool:
        camera = self.config.cameras.get(name)
        return camera is not None and camera.tracked

    def _opened(self, stream: StreamInfo) -> None:
        pipeline = self._pipeline
        summary = pipeline.stream_summaries().get(stream.name) if pipeline else None
        with self._data:
            self._classes[stream.name] = (
                summary.service_class
                if summary
                else views.class_of(self.config.cameras.get(stream.name))
            )
        self._tick_camera(stream.name, force=True)

    def _result(self, result: Result) -> None:
        with self._data:
            service_class = self._classes.get(result.stream, "")
        self.metrics.observe_latency(result.stream, service_class, result.latency_ms / 1000.0)

    def _events(self, stream: str, events: Sequence[Event]) -> None:
        for event in events:
            self.publish_event(stream, event.to_dict())

    def _ended_stream(self, summary: StreamSummary) -> None:
        """A stream ended (by itself, removed, or at a stop): keep its summary beside its
        outputs, and say so over MQTT. (A batch job's files report to the job instead.)"""
        if summary.name not in self.config.cameras and not self._segments.has(summary.name):
            return
        stem = self._segments.end(summary.name)
        if summary.name in self.config.cameras:
            with self._data:
                self._ended[summary.name] = summary
        if self.config.output.dir:
            folder = self.config.resolve(self.config.output.dir)
            if stem == summary.name:  # it never opened: no segment began
                stem = self._segments.begin(summary.name)
                self._segments.end(summary.name)
            path = folder / f"{stem}.summary.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
        mqtt = self.mqtt
        if mqtt is not None and summary.name in self.config.cameras:
            state = {"state": summary.status, "summary": views.brief(summary)}
            mqtt.publish_state(summary.name, state)

    def _tick(self) -> None:
        """On the pipeline's run thread, every half second: each class's frame count for its
        rate; retained state when it changed (or every 10 s with fresh figures)."""
        pipeline = self._pipeline
        if pipeline is not None:
            classes = pipeline.class_summaries()
            self._class_rates.sample({name: c.frames for name, c in classes.items()})
        if self.mqtt is None:
            return
        figures = self._figures()
        for name in list(self.config.cameras):
            self._tick_camera(name, figures)

    def _tick_camera(self, name: str, figures: dict | None = None, force: bool = False) -> None:
        mqtt = self.mqtt
        if mqtt is None:
            return
        view = self._describe(name, figures if figures is not None else self._figures())
        state = view["state"]
        now = time.monotonic()
        with self._data:
            last = self._published.get(name)
            due = force or last is None or last[0] != state
            due = due or now - last[1] > STATE_REPUBLISH_SECONDS
            if due:
                self._published[name] = (state, now)
        if due:
            mqtt.publish_state(name, {k: view[k] for k in _STATE_KEYS})


_STATE_KEYS = (
    "state", "since", "fps", "latency_p95_ms", "frames_processed", "frames_dropped",
    "reconnects", "last_error",
)  # fmt: skip
