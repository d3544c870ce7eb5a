"""Video files, decoded with OpenCV's FFmpeg backend (or PyAV, see `sources.decoders`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sources.decoders import DECODE_PARAMS, OPENCV, Capture, DecoderOptions, open_file_capture
from sources.errors import SourceError

__all__ = ["DECODE_PARAMS", "FileSource", "frame_size", "plausible_fps"]

# A file that ends this far short of the frame count its container declares is reported as
# truncated or corrupt. Some containers (MKV, WebM) only estimate the count, hence the slack.
_SHORTFALL_TOLERANCE = 0.02

# Frame rates outside this range are damaged headers, not cameras: an MP4 whose time scale is 0
# reads as 0.001 fps, and OpenCV's video writer refuses such rates (and hangs on an infinite one).
_PLAUSIBLE_FPS = (0.01, 1000.0)


def plausible_fps(fps: float) -> float:
    """`fps` as a container reports it, or 0.0 (unknown) when it cannot be a real frame rate."""
    low, high = _PLAUSIBLE_FPS
    return fps if low <= fps <= high else 0.0  # also 0.0 for NaN


class FileSource:
    """A video file. Opening checks that it exists and that a first frame decodes.

    `grab` decodes the next frame; `retrieve` converts it to BGR (a `GrabbingSource`), so a
    frame that is not analysed costs only its decoding. `decoder` picks the library (OpenCV by
    default, or PyAV) and its decoder options.
    """

    live = False

    def __init__(
        self, path: str | Path, name: str | None = None, decoder: DecoderOptions = OPENCV
    ) -> None:
        self.path = Path(path)
        self.uri = str(path)
        self.name = name or self.path.stem
        self.decoder = decoder
        self._capture: Capture | None = None
        self._first_pending = False  # open decoded the first frame; the first grab returns it
        self._decoded = 0
        self.declared_frames = 0
        self.fps = 0.0
        self.size = (0, 0)

    def open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"{self.uri}: no such file; check the path")
        if not self.path.is_file():
            raise SourceError(f"{self.uri}: not a file; pass a video file")
        capture = open_file_capture(str(self.path), self.decoder)
        if not capture.isOpened():
            raise SourceError(f"{self.uri}: cannot open as a video (not a video, or corrupt)")
        if not capture.grab():
            capture.release()
            raise SourceError(f"{self.uri}: no frame could be decoded (empty or corrupt video)")
        self._capture = capture
        self._first_pending = True
        self.declared_frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.fps = plausible_fps(float(capture.get(cv2.CAP_PROP_FPS) or 0.0))
        self.size = frame_size(capture)

    def read(self) -> tuple[np.ndarray, float] | None:
        pts_ms = self.grab()
        return None if pts_ms is None else (self.retrieve(), pts_ms)

    def grab(self) -> float | None:
        if self._capture is None:
            raise SourceError(f"{self.uri}: read before open")
        if self._first_pending:
            self._first_pending = False
        elif not self._capture.grab():
            self._check_complete()
            return None
        self._decoded += 1
        return self._capture.get(cv2.CAP_PROP_POS_MSEC)

    @property
    def discarded(self) -> bool:
        """The frame last grabbed was left out undecoded (`DecoderOptions.skip_nonref`): it
        counts as skipped and cannot be retrieved."""
        return bool(getattr(self._capture, "discarded", False))  # OpenCV's never are

    def retrieve(self) -> np.ndarray:
        if self._capture is None:
            raise SourceError(f"{self.uri}: read before open")
        if self.discarded:
            raise SourceError(f"{self.uri}: frame {self._decoded - 1} was left out undecoded")
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            raise SourceError(f"{self.uri}: frame {self._decoded - 1} could not be converted")
        return image

    def _check_complete(self) -> None:
        """At the end: raise if the file stopped well short of the frames it declares."""
        expected = self.declared_frames
        if expected and self._decoded < expected * (1 - _SHORTFALL_TOLERANCE) - 1:
            raise SourceError(
                f"{self.uri}: decoding stopped at frame {self._decoded} of {expected} "
                "(file truncated or corrupt)"
            )

    def interrupt(self) -> None:
        pass  # reads never wait long

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def frame_size(capture: Capture) -> tuple[int, int]:
    """(width, height) of the frames `capture` gives, as rotated by OpenCV."""
    return (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
