"""What the API, the metrics and the live page show of the cameras and the engine: plain
functions of the running pipeline's figures."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.apps.serve.config import CameraConfig
from pipeline.apps.serve.metrics import EngineFigures, StreamFigures
from pipeline.engine.running import RunningPipeline
from pipeline.engine.service_classes import ServiceClass
from pipeline.summary import StreamSummary
from sources import StreamState, StreamStatus, mask_credentials

# The figures copied from a camera's summary into its view (0 before it runs).
SUMMARY_KEYS = (
    "frames_decoded", "frames_processed", "frames_dropped", "frames_skipped",
    "frames_no_motion", "latency_p50_ms", "latency_p95_ms", "reconnects", "down_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class CameraFigures:
    """A camera's figures: its running summary, status and fps, or how it ended (no status,
    0 fps); all None before it runs."""

    summary: StreamSummary | None = None
    status: StreamStatus | None = None
    fps: float = 0.0


def camera_figures(
    pipeline: RunningPipeline | None, ended: dict[str, StreamSummary], fps: dict[str, float]
) -> dict[str, CameraFigures]:
    """Per camera, running (`pipeline`'s) or `ended`; `fps` from the live view."""
    figures = {name: CameraFigures(summary) for name, summary in ended.items()}
    if pipeline is not None:
        status = pipeline.stream_status()
        for name, summary in pipeline.stream_summaries().items():
            figures[name] = CameraFigures(summary, status.get(name), fps.get(name, 0.0))
    return figures


def camera_state(summary: StreamSummary | None, status: StreamStatus | None) -> str:
    """A live stream's own state (`connecting` until its first frame), else how it ended,
    else `starting`."""
    if status is not None:
        if status.state is StreamState.STREAMING and summary and not summary.frames_decoded:
            return StreamState.CONNECTING.value
        return status.state.value
    if summary is not None:
        return summary.status  # done, failed, stopped
    return "starting"


def class_of(camera: CameraConfig | None) -> str:
    """A camera's service class before it runs: its `class`, else its source's (a live
    stream or a realtime file is live, a recorded file batch), as the engine decides it."""
    if camera is None:
        return ""
    if camera.service_class:
        return camera.service_class
    return ServiceClass.for_source(not camera.is_file or camera.realtime).value


def describe_camera(
    name: str, camera: CameraConfig | None, figures: CameraFigures, counts: dict
) -> dict:
    """A camera as the API shows it: state, class, figures, counts and its settings (the
    source's credentials masked)."""
    summary, status = figures.summary, figures.status
    view = {
        "name": name,
        "source": mask_credentials(camera.source) if camera else None,
        "state": camera_state(summary, status),
        "class": (summary.service_class if summary else "") or class_of(camera),
        "since": status.since if status else None,
        "last_error": (status.last_error if status else "")
        or (summary.errors[-1] if summary and summary.errors else ""),
    }
    view["fps"] = figures.fps
    for key in SUMMARY_KEYS:
        view[key] = getattr(summary, key) if summary else 0
    view["counts"] = counts
    if camera is not None:
        settings = camera.to_table()
        settings["source"] = mask_credentials(camera.source)
        if camera.record_source:
            settings["record_source"] = mask_credentials(camera.record_source)
        view["config"] = settings
    return view


def brief(summary: StreamSummary) -> dict:
    """An ended stream's figures, as MQTT publishes them with its state."""
    return {
        "frames_processed": summary.frames_processed, "frames_dropped": summary.frames_dropped,
        "errors": summary.errors,
    }  # fmt: skip


def engine_figures(pipeline: RunningPipeline | None) -> EngineFigures:
    """The engine's figures for the metrics: each stream's, and the requests in flight."""
    if pipeline is None:
        return EngineFigures()
    status = pipeline.stream_status()
    streams = []
    for name, summary in pipeline.stream_summaries().items():
        state = status.get(name)
        up = state is not None and state.state is StreamState.STREAMING
        streams.append(StreamFigures(
            name, up, summary.frames_decoded, summary.frames_processed,
            summary.frames_dropped, summary.frames_skipped, summary.reconnects,
            summary.service_class, summary.frames_no_motion,
        ))  # fmt: skip
    load = pipeline.request_load()
    return EngineFigures(tuple(streams), load.in_flight, load.requests)


def page_header(pipeline: RunningPipeline | None, total_fps: float, streams: int) -> str:
    """The live page's header line."""
    if pipeline is None:
        return f"vapipe serve   {total_fps:.1f} fps   {streams} cameras"
    info = pipeline.inference()
    return (
        f"vapipe serve   {total_fps:.1f} fps   {streams} cameras   "
        f"{info.device} on {', '.join(info.execution_devices)}"
    )
