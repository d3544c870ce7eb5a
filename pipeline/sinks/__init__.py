"""Result sinks."""

from pipeline.sinks.base import Sink, StreamInfo
from pipeline.sinks.callback import CallbackSink
from pipeline.sinks.jsonl import JsonlSink
from pipeline.sinks.video import AnnotatedVideoSink

__all__ = ["AnnotatedVideoSink", "CallbackSink", "JsonlSink", "Sink", "StreamInfo"]
