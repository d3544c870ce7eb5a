"""vapipe: many video streams analysed at once with an OpenVINO model.

from pipeline import Pipeline, JsonlSink

with Pipeline(["cam1=a.mp4", "b.mp4"], "yolo11n_openvino_model", sinks=[JsonlSink("out")]) as p:
    summary = p.run()
"""

from pipeline.adapters import (
    BlazeFaceAdapter,
    ModelAdapter,
    SsdAdapter,
    YoloAdapter,
    create_adapter,
)
from pipeline.batch import BatchJob
from pipeline.batch_files import BatchFile, find_videos
from pipeline.batch_report import BatchReport, FileReport
from pipeline.demo import Demo, DemoOptions
from pipeline.detections import Detections, Result
from pipeline.detector import Detector
from pipeline.devices import DevicePlan, plan_device
from pipeline.errors import AdapterError, DeviceError, ModelError, SourceError, VapipeError
from pipeline.live_view import LiveView
from pipeline.model import LoadedModel, load_model
from pipeline.pipeline import Pipeline, Progress
from pipeline.runtime import InferenceRuntime, describe_devices
from pipeline.sinks import AnnotatedVideoSink, CallbackSink, JsonlSink, Sink, StreamInfo
from pipeline.stream_options import StreamOptions
from pipeline.summary import RunSummary, StreamSummary
from sources import (
    FileSource,
    Frame,
    LiveOptions,
    LiveSource,
    QueuePolicy,
    StreamState,
    StreamStatus,
    VideoSource,
)

__all__ = [
    "AdapterError",
    "AnnotatedVideoSink",
    "BatchFile",
    "BatchJob",
    "BatchReport",
    "BlazeFaceAdapter",
    "CallbackSink",
    "Demo",
    "DemoOptions",
    "Detections",
    "Detector",
    "DeviceError",
    "DevicePlan",
    "FileReport",
    "FileSource",
    "Frame",
    "InferenceRuntime",
    "JsonlSink",
    "LiveOptions",
    "LiveSource",
    "LiveView",
    "LoadedModel",
    "ModelAdapter",
    "ModelError",
    "Pipeline",
    "Progress",
    "QueuePolicy",
    "Result",
    "RunSummary",
    "Sink",
    "SourceError",
    "SsdAdapter",
    "StreamInfo",
    "StreamOptions",
    "StreamState",
    "StreamStatus",
    "StreamSummary",
    "VapipeError",
    "VideoSource",
    "YoloAdapter",
    "create_adapter",
    "describe_devices",
    "find_videos",
    "load_model",
    "plan_device",
]
