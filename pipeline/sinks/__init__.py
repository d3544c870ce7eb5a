"""Result sinks."""

from pipeline.sinks.base import Sink, StreamInfo
from pipeline.sinks.callback import CallbackSink
from pipeline.sinks.jsonl import JsonlSink

__all__ = ["CallbackSink", "JsonlSink", "Sink", "StreamInfo"]
