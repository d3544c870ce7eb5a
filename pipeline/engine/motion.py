"""Motion-gated inference: a cheap look at a small grey copy of each frame decides whether
the detector needs to see it (on the decoder thread, after sampling)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.engine.motion_options import MotionMask, MotionOptions
from sources import Frame

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
NO_MOTION = "no_motion"  # a result's `skipped` when its frame was not inferred


@dataclass(frozen=True, slots=True)
class MotionFrame:
    """What the motion detector saw in one frame: the moving regions (x1, y1, x2, y2 in the
    frame's pixels), the share of unmasked pixels that changed, and whether that was a light
    change (then no region is reported and the background starts again from this frame)."""

    boxes: tuple[Box, ...]
    changed: float
    light_change: bool = False

    @property
    def moving(self) -> bool:
        return bool(self.boxes)


class MotionDetector:
    """Compares each frame with a background model on a small grey copy (one stream, one
    thread). See `MotionOptions` for the settings."""

    def __init__(self, options: MotionOptions, masks: Sequence[MotionMask] = ()) -> None:
        self.options = options
        self._masks = tuple(masks)
        self._size: tuple[int, int] | None = None  # the frame's (width, height)
        self._small: tuple[int, int] = (0, 0)
        self._keep: np.ndarray | None = None  # 255 where motion counts, 0 under a mask
        self._unmasked = 1
        self._background: np.ndarray | None = None  # float32, for `average`
        self._mog2: cv2.BackgroundSubtractor | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def _start(self, width: int, height: int) -> None:
        small_w = min(self.options.width, width)
        small_h = max(1, round(height * small_w / width))
        self._size, self._small = (width, height), (small_w, small_h)
        keep = np.full((small_h, small_w), 255, np.uint8)
        for mask in self._masks:
            corners = np.array([(x * small_w, y * small_h) for x, y in mask.points])
            cv2.fillPoly(keep, [np.round(corners).astype(np.int32)], 0)
        self._keep = keep
        self._unmasked = max(1, int(np.count_nonzero(keep)))

    def _grey(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        small = cv2.resize(grey, self._small, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def detect(self, image: np.ndarray) -> MotionFrame:
        height, width = image.shape[:2]
        if self._size != (width, height):  # the first frame, or a live stream's new size
            self._start(width, height)
            self._background = self._mog2 = None
        grey = self._grey(image)
        moving = self._foreground(grey)
        if moving is None:  # the first frame: nothing to compare with yet
            return MotionFrame((), 0.0)
        assert self._keep is not None
        moving = cv2.bitwise_and(moving, self._keep)
        changed = cv2.countNonZero(moving) / self._unmasked
        if changed > self.options.global_change:
            self._rebaseline(grey)
            return MotionFrame((), changed, light_change=True)
        moving = cv2.dilate(moving, self._kernel, iterations=2)
        moving = cv2.bitwise_and(moving, self._keep)
        count, _, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
        small_w, small_h = self._small
        min_pixels = self.options.min_area * small_w * small_h
        sx, sy = width / small_w, height / small_h
        boxes = tuple(
            (float(x * sx), float(y * sy), float((x + w) * sx), float((y + h) * sy))
            for x, y, w, h, area in stats[1:count].tolist()
            if area >= min_pixels
        )
        return MotionFrame(boxes, changed)

    def _foreground(self, grey: np.ndarray) -> np.ndarray | None:
        """255 where `grey` differs from the background (then updated), or None at the start."""
        options = self.options
        if options.method == "mog2":
            first = self._mog2 is None
            if first:
                self._mog2 = cv2.createBackgroundSubtractorMOG2(500, 16, detectShadows=False)
            assert self._mog2 is not None
            mask = self._mog2.apply(grey, learningRate=1.0 if first else -1)
            return None if first else mask
        if self._background is None:
            self._background = grey.astype(np.float32)
            return None
        difference = cv2.absdiff(grey, cv2.convertScaleAbs(self._background))
        _, mask = cv2.threshold(difference, options.threshold * 255, 255, cv2.THRESH_BINARY)
        cv2.accumulateWeighted(grey, self._background, options.learning)
        return mask

    def _rebaseline(self, grey: np.ndarray) -> None:
        if self._mog2 is not None:
            self._mog2.apply(grey, learningRate=1.0)
        else:
            self._background = grey.astype(np.float32)


@dataclass(frozen=True, slots=True)
class MotionCheck:
    """Whether a frame goes to the detector, and the motion seen in it."""

    infer: bool
    motion: MotionFrame


class MotionGate:
    """Decides, per frame of one stream, whether it is inferred: it is when it has motion,
    while `tracks_alive()` (the stream's tracker has tracks), for the first frame, and when
    `keepalive` seconds have passed since the last inferred one (a file's time is its pts, a
    live stream's the capture time); otherwise its result is `skipped` ("no_motion")."""

    def __init__(
        self,
        options: MotionOptions,
        stream: str,
        *,
        live: bool = False,
        tracks_alive: Callable[[], bool] = lambda: False,
    ) -> None:
        self.detector = MotionDetector(options, options.masks_for(stream))
        self._keepalive = options.keepalive
        self._live = live
        self._tracks_alive = tracks_alive
        self._last_inferred: float | None = None

    def check(self, frame: Frame) -> MotionCheck:
        motion = self.detector.detect(frame.image)
        now = frame.captured_at if self._live else frame.pts_ms / 1000.0
        last = self._last_inferred
        infer = (
            motion.moving
            or last is None
            or now - last >= self._keepalive
            or now < last  # time went back (a live stream's reconnection, a looped file)
            or self._tracks_alive()
        )
        if infer:
            self._last_inferred = now
        return MotionCheck(infer, motion)
