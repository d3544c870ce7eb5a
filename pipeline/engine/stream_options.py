"""Per-stream settings shared by every stream of a pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline import option_table as opt
from pipeline.engine.frame_queue import QueuePolicy
from pipeline.engine.motion_options import MotionOptions
from pipeline.engine.service_classes import Scheduling, ServiceClass
from pipeline.option_table import Option
from sources.live_options import LiveOptions

if TYPE_CHECKING:  # not at run time: the command line's parser loads this, and must stay light
    from pipeline.analytics import AnalyticsOptions


@dataclass(frozen=True)
class StreamOptions:
    """How streams are read, queued and scheduled.

    `policy` overrides each source's own back-pressure policy (files block, live streams drop
    their oldest queued frame); `every` analyses every Nth decoded frame and `max_fps` at most
    that many per second per stream (frames left out are counted as skipped); `live` says how
    live streams connect; `lane_capacity` is the queued frames per stream (default: enough
    that twice the request pool is queued in all).

    `classes` sets the service class of streams by name (default: live for live sources,
    batch for files); `scheduling` serves live frames first (`classes`) or every stream
    round-robin (`fair`); `batch_requests` caps how many requests batch frames may hold while
    live streams run (default: see `BatchBound`). With `classes`, a batch stream started while
    live streams run decodes at the lowest OS priority, and on the CPU infers on a copy of the
    model at that priority (`InferenceRuntime.start_background`).

    `classify` false leaves a stream's detections out of the second stage (if the pipeline
    has one): a camera added with its own options whose crops need no classifier.
    `analytics`, if set, is the streams' own tracking, lines and zones (a camera added with its
    own options); None leaves them to the pipeline's `analytics`.

    Each stream's results reach its sinks on a thread of its own; `sink_timeout` is how long
    its sinks may hold one result (seconds) before the stream is given up on: it fails, its
    later results are dropped and counted, and the run goes on.
    `motion`, if set, gates inference by motion (see `MotionOptions`): a frame with no motion
    and no live track is delivered, in order, as a result `skipped` "no_motion".
    """

    policy: QueuePolicy | None = None
    every: int = 1
    max_fps: float | None = None
    live: LiveOptions = field(default_factory=LiveOptions)
    lane_capacity: int | None = None
    classes: Mapping[str, ServiceClass] = field(default_factory=dict)
    scheduling: Scheduling = Scheduling.CLASSES
    batch_requests: int | None = None
    classify: bool = True
    analytics: AnalyticsOptions | None = None
    sink_timeout: float = 30.0
    motion: MotionOptions | None = None

    def service_class(self, name: str, live: bool) -> ServiceClass:
        """The class of the stream `name` whose source is `live` or not."""
        return self.classes.get(name) or ServiceClass.for_source(live)

    @property
    def samples(self) -> bool:
        """Whether some decoded frames are left out of inference."""
        return self.every > 1 or self.max_fps is not None

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], *, own_transport: bool = True, **settings: Any
    ) -> StreamOptions:
        """StreamOptions from option values by their declared names (`pipeline.option_table`:
        policy, every, max_fps, open_timeout, read_timeout, max_retries, rtsp_transport), a
        parsed command line's or a configured camera's; a missing one takes its default.
        `own_transport` false leaves the RTSP transport to the process-wide one; `settings`
        are the other fields (analytics, motion, classes ...)."""

        def value(option: Option) -> Any:
            return values.get(option.name, option.default)

        live = LiveOptions(
            value(opt.OPEN_TIMEOUT), value(opt.READ_TIMEOUT), value(opt.MAX_RETRIES),
            rtsp_transport=value(opt.RTSP_TRANSPORT) if own_transport else None,
        )  # fmt: skip
        policy = value(opt.POLICY)
        return cls(
            policy=QueuePolicy(policy) if policy else None, every=value(opt.EVERY),
            max_fps=value(opt.MAX_FPS), live=live, **settings,
        )  # fmt: skip
