"""Tracking and counting: objects followed over time, lines and zones, events."""

from pipeline.analytics.events import Event
from pipeline.analytics.options import (
    AnalyticsError,
    AnalyticsOptions,
    LineSpec,
    ZoneSpec,
    analytics_options,
    parse_line,
    parse_zone,
)
from pipeline.analytics.stream import FrameAnalytics, Overlay, StreamAnalytics
from pipeline.analytics.tracker import ByteTracker, Track, TrackerOptions, TrackerStep

__all__ = [
    "AnalyticsError",
    "AnalyticsOptions",
    "ByteTracker",
    "Event",
    "FrameAnalytics",
    "LineSpec",
    "Overlay",
    "StreamAnalytics",
    "Track",
    "TrackerOptions",
    "TrackerStep",
    "ZoneSpec",
    "analytics_options",
    "parse_line",
    "parse_zone",
]
