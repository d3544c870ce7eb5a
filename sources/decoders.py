"""Which library decodes a video file, and with what decoder options."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from sources.errors import SourceError
from sources.pyav_capture import PYAV_MISSING, PyAVCapture

# One FFmpeg decoding thread per stream: streams already decode in parallel, one thread each,
# and FFmpeg's own frame threads only cost memory and contention. Measured here on the shared
# 768x432 clip: one stream decodes at 1034 fps with one thread and 980 with FFmpeg's default
# (2), and 16 open captures take 119 MB instead of 146 MB.
DECODE_PARAMS = [cv2.CAP_PROP_N_THREADS, 1]

DECODERS = ("opencv", "pyav")


class Capture(Protocol):
    """What vapipe uses of a `cv2.VideoCapture`; `PyAVCapture` offers the same."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def grab(self) -> bool: ...

    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class DecoderOptions:
    """How files are decoded.

    `decoder`: "opencv" (OpenCV's FFmpeg capture, the default) or "pyav" (FFmpeg's libraries
    through PyAV, `pip install 'vapipe[pyav]'`), which can pass options to the decoder itself.
    `deblock=False` (PyAV only) skips H.264/HEVC's in-loop deblocking filter: decoding costs
    about a sixth less, and the pictures show the codec's block edges, an error that builds up
    from each keyframe to the next (every frame is still decoded and counted). Detections on a
    4 Mbit/s 1080p camera clip barely change (see benchmarks/results/density.md); at low bit
    rates the blocks are larger. For sampled streams whose analysis tolerates it.
    `skip_nonref=True` (PyAV, H.264 only) leaves out pictures no other is predicted from
    (B-frames, in most encoders' settings) without decoding them: they are counted, as
    skipped, and every other frame is exactly as without it. A sampled stream then analyses
    the frames it would have picked among the rest (`every N` counts those only); a stream
    without such pictures (most cameras send none) saves nothing.
    """

    decoder: str = "opencv"
    deblock: bool = True
    skip_nonref: bool = False

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise SourceError(f"decoder {self.decoder!r}: unknown; use one of {DECODERS}")
        if not self.deblock and self.decoder != "pyav":
            raise SourceError("skipping the deblocking filter needs the PyAV decoder (pyav)")
        if self.skip_nonref and self.decoder != "pyav":
            raise SourceError("leaving out non-reference frames needs the PyAV decoder (pyav)")
        if self.decoder == "pyav" and importlib.util.find_spec("av") is None:
            raise SourceError(PYAV_MISSING)

    @property
    def codec_options(self) -> dict[str, str]:
        """FFmpeg decoder options (PyAV's `codec_context.options`)."""
        return {} if self.deblock else {"skip_loop_filter": "all"}


OPENCV = DecoderOptions()


def open_file_capture(path: str, options: DecoderOptions = OPENCV) -> Capture:
    """A capture of the video file at `path` (check `isOpened`)."""
    if options.decoder == "pyav":
        return PyAVCapture(path, options.codec_options, options.skip_nonref)
    return cv2.VideoCapture(path, cv2.CAP_FFMPEG, DECODE_PARAMS)
