"""Recording: a camera's compressed packets kept as they arrive (no decoding, no re-encoding),
written into crash-safe fragmented-MP4 segments."""

from pipeline.recording.clips import ClipOptions, EventClips
from pipeline.recording.cut import cut, recorded_files
from pipeline.recording.recorder import CameraRecorder, RecordOptions
from pipeline.recording.segments import (
    SegmentWriter,
    list_segments,
    repair_unfinished,
    segment_start,
)

__all__ = [
    "CameraRecorder",
    "ClipOptions",
    "EventClips",
    "RecordOptions",
    "SegmentWriter",
    "cut",
    "list_segments",
    "recorded_files",
    "repair_unfinished",
    "segment_start",
]
