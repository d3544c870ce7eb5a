"""Settings of motion-gated inference (light: the command line's parser loads this)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import VapipeError
from pipeline.option_table import MOTION_KEEPALIVE, MOTION_MIN_AREA, MOTION_THRESHOLD

Point = tuple[float, float]
METHODS = ("average", "mog2")


class MotionError(VapipeError):
    """A motion setting that cannot be used (one line, naming the option)."""


@dataclass(frozen=True)
class MotionMask:
    """A polygon whose pixels motion ignores (timestamps, trees), in fractions 0..1 of the
    frame's width and height; `stream`, if set, is the only stream it applies to."""

    points: tuple[Point, ...]
    stream: str | None = None

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise MotionError(f"motion mask: needs at least 3 corners, got {len(self.points)}")
        if any(not (0.0 <= v <= 1.0) for point in self.points for v in point):
            raise MotionError("motion mask: corners are fractions of the frame, 0 to 1")


@dataclass(frozen=True)
class MotionOptions:
    """How a stream decides that a frame has motion (see `pipeline.engine.motion`).

    A pixel moves when its grey level differs from the background by more than `threshold`
    (a fraction of the full scale); a frame has motion when a connected moving region covers
    at least `min_area` of the frame (fractions, so a main and a sub stream share settings).
    Pixels under `masks` never move. A frame where more than `global_change` of the unmasked
    pixels moved is a light change (lights, IR switch), not motion: the background is taken
    again from it. A frame without motion is still inferred while its stream has live tracks,
    and at least every `keepalive` seconds. `method` is the background model: a running
    `average` (weight `learning` for each new frame; 1 is plain differencing with the previous
    frame) or OpenCV's `mog2`; `width` that of the small grey copy compared.
    """

    threshold: float = MOTION_THRESHOLD.fallback
    min_area: float = MOTION_MIN_AREA.fallback
    masks: tuple[MotionMask, ...] = ()
    keepalive: float = MOTION_KEEPALIVE.fallback
    global_change: float = 0.5
    method: str = "average"
    learning: float = 0.05
    width: int = 160

    def __post_init__(self) -> None:
        for name in ("threshold", "min_area", "global_change", "learning"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                what = name.replace("_", " ")
                raise MotionError(f"motion {what}: must be in (0, 1], got {value}")
        if not self.keepalive > 0:
            raise MotionError(f"motion keep-alive: must be a positive number, got {self.keepalive}")
        if self.method not in METHODS:
            raise MotionError(f"motion method: expected one of {', '.join(METHODS)}")
        if self.width < 32:
            raise MotionError(f"motion width: at least 32 pixels, got {self.width}")

    def masks_for(self, stream: str) -> tuple[MotionMask, ...]:
        """The masks that apply to `stream`: its own and those for every stream."""
        return tuple(m for m in self.masks if m.stream in (None, stream))


def parse_motion_mask(text: str) -> MotionMask:
    """`[STREAM:]x1,y1,x2,y2,x3,y3,...` (fractions 0..1) as a MotionMask; a MotionError
    naming `--motion-mask` otherwise."""
    stream, _, numbers = text.rpartition(":")
    try:
        values = [float(v) for v in numbers.split(",")]
        if len(values) < 6 or len(values) % 2:
            raise ValueError
        return MotionMask(tuple(zip(values[::2], values[1::2], strict=True)), stream or None)
    except ValueError:
        raise MotionError(
            f"--motion-mask {text}: expected [STREAM:]x1,y1,x2,y2,x3,y3,... "
            "(at least 3 corners, fractions 0 to 1)"
        ) from None
    except MotionError as error:
        raise MotionError(f"--motion-mask {text}: {str(error).split(': ', 1)[-1]}") from None


def motion_masks(polygons: Sequence[Sequence[float]]) -> tuple[MotionMask, ...]:
    """Masks from flat lists `[x1, y1, x2, y2, ...]` (a config file's)."""
    return tuple(MotionMask(tuple(zip(p[::2], p[1::2], strict=True))) for p in polygons)
