"""Video sources, the frame type and the decoder thread."""

from sources.base import QueueClosed, QueuePolicy, VideoSource
from sources.decoder import DecoderThread
from sources.errors import SourceError, VapipeError, mask_credentials
from sources.file import FileSource
from sources.frame import Frame
from sources.spec import as_source, sources_from_specs, split_spec, unique_names
from sources.synthetic import SyntheticSource

__all__ = [
    "DecoderThread",
    "FileSource",
    "Frame",
    "QueueClosed",
    "QueuePolicy",
    "SourceError",
    "SyntheticSource",
    "VapipeError",
    "VideoSource",
    "as_source",
    "mask_credentials",
    "sources_from_specs",
    "split_spec",
    "unique_names",
]
