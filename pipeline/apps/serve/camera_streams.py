"""A configured camera as the engine runs it: its source, stream options and class."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.apps.serve.config import CameraConfig, ServiceConfig
from pipeline.engine.frame_queue import QueuePolicy
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from sources import LiveOptions, VideoSource, simulate
from sources.spec import source_from_spec


@dataclass(frozen=True)
class CameraStream:
    """What `RunningPipeline.add_stream` takes for a camera."""

    source: VideoSource
    options: StreamOptions
    service_class: ServiceClass | None


def source_live_options(camera: CameraConfig) -> LiveOptions:
    return LiveOptions(
        camera.open_timeout, camera.read_timeout, camera.max_retries,
        rtsp_transport=camera.rtsp_transport,
    )  # fmt: skip


def camera_stream(config: ServiceConfig, camera: CameraConfig) -> CameraStream:
    """The camera's stream (its file source relative to the config's folder), not opened."""
    live = source_live_options(camera)
    source = source_from_spec(config.source_of(camera), camera.name, live, camera.decoder_options())
    source = simulate(source, realtime=camera.realtime, loop=camera.loop)
    options = StreamOptions(
        policy=QueuePolicy(camera.policy) if camera.policy else None,
        every=camera.every, max_fps=camera.max_fps, live=live, classify=camera.classify,
        analytics=camera.analytics(), motion=camera.motion_options(),
    )  # fmt: skip
    service_class = ServiceClass(camera.service_class) if camera.service_class else None
    return CameraStream(source, options, service_class)
