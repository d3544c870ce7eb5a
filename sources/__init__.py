"""Video sources, the frame type and the decoder thread."""

from sources.backoff import Backoff
from sources.base import QueueClosed, QueuePolicy, VideoSource
from sources.decoder import DecoderThread
from sources.errors import SourceError, VapipeError, mask_credentials
from sources.file import FileSource
from sources.frame import Frame
from sources.live import LiveOptions, LiveSource, configure_ffmpeg_capture, is_live_uri
from sources.sampling import FrameSampler
from sources.spec import as_source, sources_from_specs, split_spec, unique_names
from sources.state import StreamState, StreamStateMachine, StreamStatus
from sources.synthetic import SyntheticSource

__all__ = [
    "Backoff",
    "DecoderThread",
    "FileSource",
    "Frame",
    "FrameSampler",
    "LiveOptions",
    "LiveSource",
    "QueueClosed",
    "QueuePolicy",
    "SourceError",
    "StreamState",
    "StreamStateMachine",
    "StreamStatus",
    "SyntheticSource",
    "VapipeError",
    "VideoSource",
    "as_source",
    "configure_ffmpeg_capture",
    "is_live_uri",
    "mask_credentials",
    "sources_from_specs",
    "split_spec",
    "unique_names",
]
