"""Result sinks."""

from pipeline.outputs.sinks.base import Sink, StreamInfo
from pipeline.outputs.sinks.callback import CallbackSink
from pipeline.outputs.sinks.jsonl import JsonlSink
from pipeline.outputs.sinks.video import AnnotatedVideoSink

__all__ = ["AnnotatedVideoSink", "CallbackSink", "JsonlSink", "Sink", "StreamInfo"]
