"""Result sinks."""

from pipeline.outputs.sinks.base import EventAnnotator, EventSink, Sink, StreamInfo
from pipeline.outputs.sinks.callback import CallbackSink
from pipeline.outputs.sinks.events import EventsJsonlSink
from pipeline.outputs.sinks.jsonl import JsonlSink
from pipeline.outputs.sinks.video import AnnotatedVideoSink

__all__ = [
    "AnnotatedVideoSink",
    "CallbackSink",
    "EventAnnotator",
    "EventSink",
    "EventsJsonlSink",
    "JsonlSink",
    "Sink",
    "StreamInfo",
]
