"""vapipe: many video streams analysed at once with an OpenVINO model.

from pipeline import Pipeline, JsonlSink

with Pipeline(["cam1=a.mp4", "b.mp4"], "yolo11n_openvino_model", sinks=[JsonlSink("out")]) as p:
    summary = p.run()

Names are imported from their modules on first use (see `sources.exports`), so that importing
one part of the package, the command line's parser say, does not load OpenVINO, OpenCV and
every application.
"""

from __future__ import annotations

from sources.exports import lazy_exports

# public name -> module that defines it
_EXPORTS = {
    "AdapterError": "pipeline.errors",
    "DeviceError": "pipeline.errors",
    "ModelError": "pipeline.errors",
    "OutputError": "pipeline.errors",
    "SourceError": "pipeline.errors",
    "VapipeError": "pipeline.errors",
    "Attributes": "pipeline.attributes",
    "Detections": "pipeline.detections",
    "Result": "pipeline.detections",
    "RunSummary": "pipeline.summary",
    "StreamOutcome": "pipeline.summary",
    "StreamSummary": "pipeline.summary",
    "AnalyticsError": "pipeline.analytics",
    "AnalyticsOptions": "pipeline.analytics",
    "Event": "pipeline.analytics",
    "LineSpec": "pipeline.analytics",
    "StreamAnalytics": "pipeline.analytics",
    "TrackerOptions": "pipeline.analytics",
    "ZoneSpec": "pipeline.analytics",
    "analytics_options": "pipeline.analytics",
    "parse_line": "pipeline.analytics",
    "parse_zone": "pipeline.analytics",
    "BlazeFaceAdapter": "pipeline.models.adapters",
    "ModelAdapter": "pipeline.models.adapters",
    "SsdAdapter": "pipeline.models.adapters",
    "YoloAdapter": "pipeline.models.adapters",
    "create_adapter": "pipeline.models.adapters",
    "Classifier": "pipeline.models.classifiers",
    "ClassifyOptions": "pipeline.models.classifiers",
    "ClassifySpec": "pipeline.models.classifiers",
    "Detector": "pipeline.models.detector",
    "DetectorOptions": "pipeline.models.detector_options",
    "DevicePlan": "pipeline.models.devices",
    "plan_device": "pipeline.models.devices",
    "LoadedModel": "pipeline.models.loader",
    "load_model": "pipeline.models.loader",
    "InferenceRuntime": "pipeline.models.runtime",
    "describe_devices": "pipeline.models.runtime",
    "AnnotatedVideoSink": "pipeline.outputs.sinks",
    "CallbackSink": "pipeline.outputs.sinks",
    "EventAnnotator": "pipeline.outputs.sinks",
    "EventSink": "pipeline.outputs.sinks",
    "EventsJsonlSink": "pipeline.outputs.sinks",
    "JsonlSink": "pipeline.outputs.sinks",
    "Sink": "pipeline.outputs.sinks",
    "StreamInfo": "pipeline.outputs.sinks",
    "LiveView": "pipeline.outputs.live_view",
    "QueuePolicy": "pipeline.engine.frame_queue",
    "Pipeline": "pipeline.engine.pipeline",
    "Progress": "pipeline.engine.pipeline",
    "StreamOptions": "pipeline.engine.stream_options",
    "BatchJob": "pipeline.apps.batch.job",
    "BatchFile": "pipeline.apps.batch.files",
    "find_videos": "pipeline.apps.batch.files",
    "BatchReport": "pipeline.apps.batch.report",
    "FileReport": "pipeline.apps.batch.report",
    "Demo": "pipeline.apps.demo.app",
    "DemoOptions": "pipeline.apps.demo.app",
    "Service": "pipeline.apps.serve.service",
    "ServiceConfig": "pipeline.apps.serve.config",
    "load_config": "pipeline.apps.serve.config",
    "FileSource": "sources",
    "Frame": "sources",
    "LiveOptions": "sources",
    "LiveSource": "sources",
    "SimulatedCamera": "sources",
    "StreamState": "sources",
    "StreamStatus": "sources",
    "VideoSource": "sources",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
