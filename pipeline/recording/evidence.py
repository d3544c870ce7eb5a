"""The evidence behind each event: its clip (`clip`) and, for a track's end, a snapshot of the
track's best frame with its box drawn and a crop of the box (`snapshot`, `snapshot_crop`).

`EvidenceSink` is a sink that annotates events (`EventAnnotator`): the pipeline hands it each
frame's events first and gives what it returns, those paths added, to the sinks that write or
publish events (the events file, the service's MQTT), so the event line itself says where its
video and pictures are. Each of those sinks stays on its own: one failing fails for its stream
only, as any sink does. Paths are relative to the plan's `base` (the folder holding the
stream's events file)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from pipeline.analytics.events import Event
from pipeline.atomic import write_atomically
from pipeline.detections import Result
from pipeline.errors import VapipeError
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.recording.clips import ClipOptions, EventClips
from pipeline.recording.timeline import LiveClock, RecordingClock
from pipeline.summary import StreamSummary

log = logging.getLogger(__name__)

JPEG_QUALITY = 90


@dataclass(frozen=True)
class EvidencePlan:
    """Where one stream's evidence goes: clips of its recording under `recording` into
    `clips` (both or neither), snapshots into `snapshots`; event paths relative to `base`.
    `clip_index`: also list each event's clip in this JSON Lines file (`vapipe run`).
    `clock`: where an event lies on the recording (`timeline.clock_of` its recorder).
    `on_failure(kind)`: told each time a `clip` or a `snapshot` could not be written (it is
    logged as a warning too), e.g. to count it in a metric."""

    base: Path
    recording: Path | None = None
    clips: Path | None = None
    snapshots: Path | None = None
    clip_options: ClipOptions = field(default_factory=ClipOptions)
    clip_index: Path | None = None
    clock: RecordingClock = field(default_factory=LiveClock)  # one per stream
    on_failure: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class BestFrame:
    """A track's best sighting: the frame (a copy of its picture) where its box scored highest."""

    score: float
    box: tuple[float, float, float, float]
    label: str
    frame: int
    captured_at: float
    image: np.ndarray


class BestFrames:
    """Per live confirmed track, its best frame by the rule: the highest detector score
    (ties keep the earlier frame). The picture is copied only when a track's score improves,
    once per frame however many tracks improved in it; a track's entry goes when it ends."""

    def __init__(self) -> None:
        self._best: dict[int, BestFrame] = {}
        self.copies = 0

    def observe(self, result: Result) -> None:
        ids = result.track_ids
        if not ids:
            return
        detections, image = result.detections, None
        for i, track_id in enumerate(ids):
            if track_id is None:
                continue
            score = float(detections.scores[i])
            best = self._best.get(track_id)
            if best is not None and score <= best.score:
                continue
            if image is None:
                image = result.frame.image.copy()  # the sinks after us may draw on it
                self.copies += 1
            box = tuple(float(v) for v in detections.boxes[i])
            label = detections.label(int(detections.class_ids[i]))
            self._best[track_id] = BestFrame(
                score, box, label, result.frame.index, result.frame.captured_at, image
            )

    def pop(self, track_id: int) -> BestFrame | None:
        return self._best.pop(track_id, None)

    def __len__(self) -> int:
        return len(self._best)


def crop_bounds(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels a box covers (x1, y1, x2, y2; outward to whole pixels, inside the frame)."""
    x1, y1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x2, y2 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def snapshot_name(camera: str, track_id: int, when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{camera}-{track_id}-{stamp}"


def write_snapshot(best: BestFrame, folder: Path, camera: str, track_id: int) -> tuple[Path, Path]:
    """`<camera>-<track>-<UTC time>.jpg` (the frame, its box and label drawn) and
    `...-crop.jpg` (the box's pixels, undrawn) in `folder`; each written whole or not at all."""
    import cv2

    from pipeline.outputs.draw import draw_label, track_color

    image = best.image
    x1, y1, x2, y2 = crop_bounds(best.box, image.shape[1], image.shape[0])
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    ok_crop, crop = cv2.imencode(".jpg", image[y1:y2, x1:x2], params)
    drawn = image.copy()
    color = track_color(track_id)
    thickness = max(2, round(2 * image.shape[0] / 720))
    cv2.rectangle(drawn, (x1, y1), (x2 - 1, y2 - 1), color, thickness)
    draw_label(drawn, f"#{track_id} {best.label} {best.score:.2f}", (x1, y1), color)
    ok_full, full = cv2.imencode(".jpg", drawn, params)
    if not (ok_crop and ok_full):
        raise VapipeError(f"snapshot of track {track_id}: JPEG encoding failed")
    stem = snapshot_name(camera, track_id, best.captured_at)
    paths = folder / f"{stem}.jpg", folder / f"{stem}-crop.jpg"
    write_atomically(paths[0], full.tobytes())
    write_atomically(paths[1], crop.tobytes())
    return paths


class _StreamEvidence:
    """One stream's clip cutter, best frames and clip index."""

    def __init__(self, name: str, plan: EvidencePlan) -> None:
        self.name = name
        self.plan = plan
        self.clips: EventClips | None = None
        if plan.clips is not None and plan.recording is not None:
            failed = None if plan.on_failure is None else lambda: plan.on_failure("clip")
            self.clips = EventClips(
                name, plan.recording, plan.clips, plan.clip_options,
                clock=plan.clock.now, on_failure=failed,
            ).start()  # fmt: skip
        self.best = BestFrames() if plan.snapshots is not None else None
        self.index: IO[str] | None = None
        if plan.clip_index is not None and self.clips is not None:
            plan.clip_index.parent.mkdir(parents=True, exist_ok=True)
            self.index = plan.clip_index.open("a", encoding="utf-8")

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.plan.base)).as_posix()

    def annotate(self, event: Event) -> Event:
        changes: dict[str, str] = {}
        if self.clips is not None:
            end = self.plan.clock.time_of(event)
            start = end - (event.duration_s or 0.0) if event.type == "track_end" else end
            clip = self.clips.add(event.type, start, end)
            changes["clip"] = self.relative(clip)
            if self.index is not None:
                line = {"type": event.type, "track_id": event.track_id, "frame": event.frame,
                        "captured_at": round(event.captured_at, 3), "clip": str(clip)}  # fmt: skip
                self.index.write(json.dumps(line) + "\n")
        if event.type == "track_end" and self.best is not None:
            best = self.best.pop(event.track_id)
            if best is not None:
                try:
                    full, crop = write_snapshot(best, self.plan.snapshots, self.name,
                                                event.track_id)  # fmt: skip
                    changes.update(snapshot=self.relative(full), snapshot_crop=self.relative(crop))
                except (VapipeError, OSError) as error:
                    log.warning("%s: snapshot of track %d not written: %s",
                                self.name, event.track_id, error)  # fmt: skip
                    if self.plan.on_failure is not None:
                        self.plan.on_failure("snapshot")
        return dataclasses.replace(event, **changes) if changes else event

    def close(self) -> None:
        if self.clips is not None:
            self.plan.clock.settle()
            self.clips.stop()
        if self.index is not None:
            self.index.close()


class EvidenceSink:
    """A sink (put it first: it copies the pictures before other sinks draw on them) that
    gives each event of a stream with a plan its `clip`, and a `track_end` its `snapshot`
    and `snapshot_crop`; `plan(stream)` says where (None: that stream's events pass
    unchanged). Snapshots are written on the stream's delivery thread when the track ends
    (two JPEG encodings, a few a minute); clips are cut on a thread of their own."""

    def __init__(self, plan: Callable[[str], EvidencePlan | None]) -> None:
        self._plan = plan
        self._streams: dict[str, _StreamEvidence] = {}
        self._lock = threading.Lock()

    def open(self, stream: StreamInfo) -> None:
        plan = self._plan(stream.name)
        if plan is not None:
            evidence = _StreamEvidence(stream.name, plan)
            with self._lock:
                old = self._streams.pop(stream.name, None)
                self._streams[stream.name] = evidence
            if old is not None:
                old.close()

    def _evidence(self, stream: str) -> _StreamEvidence | None:
        with self._lock:
            return self._streams.get(stream)

    def write(self, result: Result) -> None:
        evidence = self._evidence(result.stream)
        if evidence is None:
            return
        if evidence.clips is not None:  # per frame: no clock work for snapshots alone
            evidence.plan.clock.observe(result.frame)
        if evidence.best is not None:
            evidence.best.observe(result)

    def annotate_events(self, stream: str, events: Sequence[Event]) -> Sequence[Event]:
        evidence = self._evidence(stream)
        if evidence is None:
            return events
        annotated = [evidence.annotate(event) for event in events]
        if evidence.index is not None:
            evidence.index.flush()
        return annotated

    def finish(self, stream: StreamSummary) -> None:
        with self._lock:
            evidence = self._streams.pop(stream.name, None)
        if evidence is not None:
            evidence.close()

    def close(self) -> None:
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for evidence in streams:
            evidence.close()
