"""What a run did, per stream and in total (`summary.json` and a short text), and its progress."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.atomic import write_atomically


class StreamOutcome(enum.StrEnum):
    """How a stream went (`StreamSummary.status`); str-valued, so JSON keeps the words."""

    DONE = "done"  # its source ended by itself and every result was delivered
    FAILED = "failed"  # its source or one of its sinks failed
    STOPPED = "stopped"  # stopped before its source ended
    RUNNING = "running"  # still running (a figure taken while it runs)


@dataclass(frozen=True)
class StreamSummary:
    """How one stream went. frames_decoded = processed + dropped (live policy: oldest queued
    frame dropped when inference lags) + skipped (`every`, `max_fps`, and with motion gating
    `frames_no_motion`: frames delivered as results `skipped` "no_motion", not inferred;
    `frames_processed` counts inferred frames only). `fps` is its processing
    rate over `processing_seconds`; `media_seconds` the decoded frames' duration at the
    stream's nominal rate (0 if unknown); latency is capture to result, over the last 4096
    results; `reconnects` and `down_seconds` are a live stream's; `detections` counts
    detections per class label; `service_class` is `live` or `batch` (the scheduler's);
    `attributes` counts classified detections per class label by what their second-stage
    models said: `{"vehicle": {"color": {"red": 3}}}` for a softmax head, `{"person":
    {"has_bag": 2}}` for multi-label attributes (present ones only). With tracking on,
    `tracks` counts the confirmed tracks, `lines` the crossings per line (`{"in", "out",
    "by_label": {label: {"in", "out"}}}`) and `zones` the entries per zone (`{"entered",
    "max_occupancy", "by_label"}`) and `tentative_discarded` the new tracks dropped before
    they were confirmed (never objects, never counted); without it `tracks` is None and the
    four are left out of `summary.json`."""

    name: str
    source: str
    status: StreamOutcome  # done | failed | stopped (running: a figure so far)
    frames_decoded: int
    frames_processed: int
    frames_dropped: int
    fps: float
    frames_skipped: int = 0
    frames_no_motion: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    reconnects: int = 0
    down_seconds: float = 0.0
    processing_seconds: float = 0.0
    media_seconds: float = 0.0
    detections: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    service_class: str = ""
    attributes: dict[str, dict] = field(default_factory=dict)
    tracks: int | None = None
    lines: dict[str, dict] = field(default_factory=dict)
    zones: dict[str, dict] = field(default_factory=dict)
    tentative_discarded: int | None = None

    def counts_text(self) -> str:
        """`4 tracks; line gate: in 2, out 2; zone desk: entered 6, max 1` ("" untracked)."""
        if self.tracks is None:
            return ""
        parts = [f"{self.tracks} tracks"]
        parts += [f"line {n}: in {c['in']}, out {c['out']}" for n, c in self.lines.items()]
        parts += [
            f"zone {n}: entered {c['entered']}, max {c['max_occupancy']}"
            for n, c in self.zones.items()
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class ClassSummary:
    """How the streams of one service class went: frames processed and dropped, fps over the
    whole run, latency (capture to result) over the class's last 4096 results."""

    streams: int
    frames: int
    dropped: int
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float


@dataclass(frozen=True)
class RunSummary:
    streams: list[StreamSummary]
    total_frames: int
    wall_seconds: float
    total_fps: float
    device: str
    execution_devices: list[str]
    nireq: int
    adapter: str
    model: str
    interrupted: bool = False  # stopped (Ctrl-C, SIGTERM or `stop`) before the sources ended
    classes: dict[str, ClassSummary] = field(default_factory=dict)  # by service class
    scheduling: str = ""  # classes (live first) or fair (round-robin)
    classifiers: list[str] = field(default_factory=list)  # second-stage models
    classify_inferences: int = 0  # crops they classified

    @property
    def failed(self) -> list[StreamSummary]:
        return [s for s in self.streams if s.status == StreamOutcome.FAILED]

    def to_dict(self) -> dict:
        data = asdict(self)
        for stream in data["streams"]:
            if stream["tracks"] is None:  # not tracked: no tracking figures
                for key in ("tracks", "lines", "zones", "tentative_discarded"):
                    del stream[key]
        return data

    def write_json(self, path: str | Path) -> None:
        """Replace `path` atomically (OutputError naming it if it cannot be written)."""
        write_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def format_text(self) -> str:
        width = max([len(s.name) for s in self.streams] + [6])
        live = any(s.reconnects or s.down_seconds for s in self.streams)
        lines = [
            f"{'stream':<{width}}  {'status':<7} {'decoded':>8} {'processed':>9} "
            f"{'dropped':>7} {'skipped':>7} {'fps':>7} {'p95 ms':>7}"
            + (f" {'reconnects':>10} {'down s':>7}" if live else "")
        ]
        for s in self.streams:
            lines.append(
                f"{s.name:<{width}}  {s.status:<7} {s.frames_decoded:>8} "
                f"{s.frames_processed:>9} {s.frames_dropped:>7} {s.frames_skipped:>7} "
                f"{s.fps:>7.1f} {s.latency_p95_ms:>7.0f}"
                + (f" {s.reconnects:>10} {s.down_seconds:>7.1f}" if live else "")
            )
            lines += [f"{'':<{width}}  error: {e}" for e in s.errors]
            if s.tracks is not None:
                lines.append(f"{'':<{width}}  {s.counts_text()}")
        lines.append(
            f"total: {self.total_frames} frames in {self.wall_seconds:.1f} s = "
            f"{self.total_fps:.1f} fps on {self.device} "
            f"(executed on {', '.join(self.execution_devices)}, {self.nireq} requests, "
            f"{self.adapter} adapter)" + (" — interrupted" if self.interrupted else "")
        )
        if len(self.classes) > 1:
            lines += [
                f"{name}: {c.streams} streams, {c.frames} frames = {c.fps:.1f} fps, "
                f"{c.dropped} dropped, latency p50 {c.latency_p50_ms:.0f} ms, "
                f"p95 {c.latency_p95_ms:.0f} ms"
                for name, c in self.classes.items()
            ]
            lines.append(f"scheduling: {self.scheduling}")
        if self.classifiers:
            per_frame = self.classify_inferences / self.total_frames if self.total_frames else 0
            lines.append(
                f"second stage: {self.classify_inferences} crops classified "
                f"({per_frame:.2f} per frame) by {', '.join(self.classifiers)}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Progress:
    """Totals so far; `expected` is the frame count the started sources declare (0 if unknown)."""

    processed: int
    decoded: int
    dropped: int
    expected: int
    streams_active: int = 0
    streams_ended: int = 0
