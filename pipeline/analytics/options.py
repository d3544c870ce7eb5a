"""What to track and count: lines, zones, anchor and tracker settings, and their parsing from
`--line [STREAM:]NAME=x1,y1,x2,y2` and `--zone [STREAM:]NAME=x1,y1,x2,y2,x3,y3[,...]`.

Coordinates are fractions (0..1) of the frame's width and height, so one definition serves a
camera's main and sub stream. A definition without `STREAM:` applies to every stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from pipeline.analytics.anchors import BOX_ANCHORS, anchor_error, keypoint_of
from pipeline.analytics.geometry import Point, folds_back, polygon_area, self_intersects
from pipeline.analytics.tracker import TrackerOptions
from pipeline.counting_defaults import MAX_SECONDS, ZONE_MIN_SECONDS
from pipeline.errors import VapipeError

ANCHORS: tuple[str, ...] = BOX_ANCHORS  # and keypoint:NAME (pipeline.analytics.anchors)


class AnalyticsError(VapipeError):
    """A line, zone or tracking option is malformed or names an unknown stream."""


@dataclass(frozen=True)
class LineSpec:
    """A counting segment from `start` to `end`, in fractions of the frame size."""

    name: str
    start: Point
    end: Point
    stream: str | None = None  # None: every stream

    def __post_init__(self) -> None:
        _check_name("line", self.name)
        _check_points("line", self.name, (self.start, self.end))
        if self.start == self.end:
            raise AnalyticsError(f"line {self.name!r}: start and end are the same point")


@dataclass(frozen=True)
class ZoneSpec:
    """A polygon, its corners in fractions of the frame size; simple (no crossing edges)."""

    name: str
    points: tuple[Point, ...]
    stream: str | None = None

    def __post_init__(self) -> None:
        _check_name("zone", self.name)
        if len(self.points) < 3:
            raise AnalyticsError(
                f"zone {self.name!r}: needs at least 3 corners, got {len(self.points)}"
            )
        _check_points("zone", self.name, self.points)
        if self_intersects(self.points):
            raise AnalyticsError(
                f"zone {self.name!r}: its edges cross each other; list the corners in order "
                "around the polygon"
            )
        if polygon_area(self.points) == 0 or folds_back(self.points):
            raise AnalyticsError(
                f"zone {self.name!r}: its corners enclose no area (or turn back on an edge)"
            )


@dataclass(frozen=True)
class AnalyticsOptions:
    """Tracking and counting for a run: every stream is tracked; lines and zones apply to
    the streams they name (all when they name none). `anchor` is the point of a detection
    that crosses lines and stands in zones: the middle of its box's bottom edge
    (`bottom-center`), its centre (`center`), or a named keypoint of a pose model
    (`keypoint:left_ankle`; see `pipeline.analytics.anchors`). `band`
    is the dead band around lines, as a fraction of the box's height (at least 2 pixels):
    anchor jitter smaller than that never changes a side. `zone_min_seconds` is how long an
    anchor must stay on the other side of a zone's edge before the track enters or leaves."""

    lines: tuple[LineSpec, ...] = ()
    zones: tuple[ZoneSpec, ...] = ()
    anchor: str = "bottom-center"
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    band: float = 0.1
    trail_points: int = 16  # anchors kept per track for drawing its trail
    zone_min_seconds: float = ZONE_MIN_SECONDS

    def __post_init__(self) -> None:
        if not 0 <= self.zone_min_seconds < MAX_SECONDS:
            raise AnalyticsError(
                f"--zone-min-seconds must be 0 or more, got {self.zone_min_seconds}"
            )
        reason = anchor_error(self.anchor)
        if reason is not None:
            raise AnalyticsError(f"--anchor {self.anchor}: {reason}")
        for kind, specs in (("line", self.lines), ("zone", self.zones)):
            for i, spec in enumerate(specs):
                if any(_clash(spec, other) for other in specs[:i]):
                    raise AnalyticsError(f"--{kind} {spec.name}: defined twice for a stream")

    def for_stream(self, stream: str) -> AnalyticsOptions:
        """The lines and zones that apply to `stream`."""
        return replace(
            self,
            lines=tuple(s for s in self.lines if s.stream in (None, stream)),
            zones=tuple(s for s in self.zones if s.stream in (None, stream)),
        )

    def check_keypoints(self, keypoint_names: Sequence[str], model: str = "the model") -> None:
        """Raise AnalyticsError if the anchor is a keypoint that `model`'s detections do not
        carry (`keypoint_names`: the adapter's, empty for a model without keypoints)."""
        name = keypoint_of(self.anchor)
        if name is None or name in keypoint_names:
            return
        if not keypoint_names:
            raise AnalyticsError(
                f"--anchor {self.anchor}: {model} gives no keypoints; keypoint anchors need "
                "a pose model (adapter yolo-pose)"
            )
        raise AnalyticsError(
            f"--anchor {self.anchor}: {model} has no keypoint {name!r} (its keypoints: "
            f"{', '.join(keypoint_names)})"
        )

    def check_streams(self, streams: Iterable[str]) -> None:
        """Raise AnalyticsError if a line or zone names a stream that is not in `streams`."""
        known = set(streams)
        for kind, specs in (("line", self.lines), ("zone", self.zones)):
            for spec in specs:
                if spec.stream is not None and spec.stream not in known:
                    raise AnalyticsError(
                        f"--{kind} {spec.stream}:{spec.name}: no stream is named "
                        f"{spec.stream!r} (streams: {', '.join(sorted(known))})"
                    )


def parse_line(text: str) -> LineSpec:
    """`[STREAM:]NAME=x1,y1,x2,y2` → LineSpec; AnalyticsError names `--line`."""
    stream, name, values = _split("--line", text, "[STREAM:]NAME=x1,y1,x2,y2")
    if len(values) != 4:
        raise AnalyticsError(
            f"--line {text}: expected 4 numbers x1,y1,x2,y2 (fractions 0..1 of the frame's "
            f"width and height), got {len(values)}"
        )
    try:
        return LineSpec(name, (values[0], values[1]), (values[2], values[3]), stream)
    except AnalyticsError as error:
        raise AnalyticsError(f"--line {text}: {_reason(error)}") from None


def parse_zone(text: str) -> ZoneSpec:
    """`[STREAM:]NAME=x1,y1,x2,y2,x3,y3[,...]` → ZoneSpec; AnalyticsError names `--zone`."""
    stream, name, values = _split("--zone", text, "[STREAM:]NAME=x1,y1,x2,y2,x3,y3[,...]")
    if len(values) % 2:
        raise AnalyticsError(
            f"--zone {text}: expected x,y pairs (fractions 0..1 of the frame's width and "
            f"height), got an odd count of {len(values)} numbers"
        )
    points = tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))
    try:
        return ZoneSpec(name, points, stream)
    except AnalyticsError as error:
        raise AnalyticsError(f"--zone {text}: {_reason(error)}") from None


def analytics_options(
    lines: Sequence[str] = (),
    zones: Sequence[str] = (),
    anchor: str = "bottom-center",
    tracker: TrackerOptions | None = None,
    zone_min_seconds: float = ZONE_MIN_SECONDS,
) -> AnalyticsOptions:
    """AnalyticsOptions from the command line's texts."""
    try:
        return AnalyticsOptions(
            tuple(map(parse_line, lines)),
            tuple(map(parse_zone, zones)),
            anchor,
            tracker or TrackerOptions(),
            zone_min_seconds=zone_min_seconds,
        )
    except AnalyticsError:
        raise
    except ValueError as error:  # TrackerOptions
        raise AnalyticsError(f"tracking options: {error}") from None


def _split(option: str, text: str, form: str) -> tuple[str | None, str, list[float]]:
    head, equals, tail = text.partition("=")
    stream, colon, name = head.rpartition(":")
    if not equals or not name.strip() or (colon and not stream.strip()):
        raise AnalyticsError(f"{option} {text}: expected {form}")
    try:
        values = [float(v) for v in tail.split(",")]
    except ValueError:
        raise AnalyticsError(
            f"{option} {text}: coordinates must be numbers separated by commas"
        ) from None
    return (stream.strip() if colon else None), name.strip(), values


def _reason(error: AnalyticsError) -> str:
    """The message without its `line 'NAME': ` prefix (the option text replaces it)."""
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith(("line ", "zone ")) else text


def _clash(a: LineSpec | ZoneSpec, b: LineSpec | ZoneSpec) -> bool:
    """Same name on a common stream."""
    return a.name == b.name and (a.stream is None or b.stream is None or a.stream == b.stream)


def _check_name(kind: str, name: str) -> None:
    if not name or any(c in name for c in ":=,"):
        raise AnalyticsError(f"{kind} name {name!r}: use a name without ':', '=' or ','")


def _check_points(kind: str, name: str, points: Iterable[Point]) -> None:
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
            raise AnalyticsError(
                f"{kind} {name!r}: coordinate ({x:g}, {y:g}) is outside 0..1 (coordinates "
                "are fractions of the frame's width and height)"
            )
