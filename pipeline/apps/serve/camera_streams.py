"""A configured camera as the engine runs it: its source, stream options and class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.apps.serve.config import CameraConfig, ServiceConfig
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from sources import VideoSource, simulate
from sources.spec import source_from_spec


@dataclass(frozen=True)
class CameraStream:
    """What `RunningPipeline.add_stream` takes for a camera."""

    source: VideoSource
    options: StreamOptions
    service_class: ServiceClass | None


def camera_stream(config: ServiceConfig, camera: CameraConfig) -> CameraStream:
    """The camera's stream (its file source relative to the config's folder), not opened."""
    values = {f.name: getattr(camera, f.name) for f in dataclasses.fields(camera)}
    options = StreamOptions.from_values(
        values, classify=camera.classify, analytics=camera.analytics(),
        motion=camera.motion_options(),
    )  # fmt: skip
    source = source_from_spec(
        config.source_of(camera), camera.name, options.live, camera.decoder_options()
    )
    source = simulate(source, realtime=camera.realtime, loop=camera.loop)
    service_class = ServiceClass(camera.service_class) if camera.service_class else None
    return CameraStream(source, options, service_class)
