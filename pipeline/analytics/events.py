"""Events: what tracked objects did, one record each, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventType = Literal["line_cross", "zone_enter", "zone_exit", "track_end"]
Box = tuple[float, float, float, float]


def _box(box: Box) -> list[float]:
    return [round(float(v), 2) for v in box]


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one confirmed track, stamped with the frame that revealed it.

    `line_cross` has `line` and `direction` (`in`: from the right of the line's start→end
    to its left, as seen on the image; `out` the other way); `zone_enter` and `zone_exit` have
    `zone`, and `dwell_s` on exit; `track_end` has `duration_s` (first to last sighting),
    `first_box`, `last_box`, `first_frame` and `last_frame`.

    The files showing it, when they are made (`pipeline.recording.evidence`): `clip` (its event
    clip) and, on `track_end`, `snapshot` and `snapshot_crop`, as paths relative to the folder
    holding the stream's events file.
    """

    type: EventType
    stream: str
    frame: int
    pts_ms: float
    captured_at: float
    track_id: int
    label: str
    class_id: int
    line: str | None = None
    direction: Literal["in", "out"] | None = None
    zone: str | None = None
    dwell_s: float | None = None
    duration_s: float | None = None
    first_box: Box | None = None
    last_box: Box | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    clip: str | None = None
    snapshot: str | None = None
    snapshot_crop: str | None = None

    def to_dict(self) -> dict:
        """`{"stream", "frame", "pts_ms", "captured_at", "type", "track_id", "label",
        "class_id", ...}` with the fields of its type."""
        record = {
            "stream": self.stream,
            "frame": self.frame,
            "pts_ms": round(float(self.pts_ms), 3),
            "captured_at": round(float(self.captured_at), 3),
            "type": self.type,
            "track_id": self.track_id,
            "label": self.label,
            "class_id": self.class_id,
        }
        if self.type == "line_cross":
            record.update(line=self.line, direction=self.direction)
        elif self.type in ("zone_enter", "zone_exit"):
            record["zone"] = self.zone
            if self.dwell_s is not None:
                record["dwell_s"] = round(float(self.dwell_s), 3)
        elif self.type == "track_end":
            record.update(
                duration_s=round(float(self.duration_s or 0.0), 3),
                first_frame=self.first_frame,
                last_frame=self.last_frame,
                first_box=_box(self.first_box) if self.first_box else None,
                last_box=_box(self.last_box) if self.last_box else None,
            )
        for key in ("clip", "snapshot", "snapshot_crop"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record
