"""A video decoded with PyAV (FFmpeg's libraries), offered as OpenCV's capture is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from sources.errors import SourceError, mask_credentials
from sources.h264_refs import is_non_reference, nal_length_size

log = logging.getLogger(__name__)

_ROTATIONS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, -90: cv2.ROTATE_90_CLOCKWISE}
_ROTATIONS |= {270: cv2.ROTATE_90_CLOCKWISE, -270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_ROTATIONS |= {180: cv2.ROTATE_180, -180: cv2.ROTATE_180}


PYAV_MISSING = (
    "the PyAV decoder needs the av package: pip install 'vapipe[pyav]' "
    "(or use the default OpenCV decoder)"
)


def import_av():
    """The `av` module, or a SourceError that says how to install it."""
    try:
        import av
    except ImportError:
        raise SourceError(PYAV_MISSING) from None
    return av


def not_skippable(shown: str, codec: str) -> SourceError:
    """The error for leaving out non-reference frames of a stream that is not H.264."""
    return SourceError(
        f"{shown}: leaving out non-reference frames needs H.264, not {codec}; "
        "decode it without that option"
    )


@dataclass(frozen=True, slots=True)
class _Discarded:
    """A packet left out undecoded (a non-reference picture): only its timestamp is known."""

    pts: int | None


class PyAVCapture:
    """The first video stream of `uri`, decoded on one thread with `codec_options` passed to
    FFmpeg's decoder (what OpenCV's capture cannot do, e.g. `skip_loop_filter`);
    `container_options` go to the demuxer (e.g. `rtsp_transport`), `timeout` is (open, read)
    in seconds.

    The `grab` / `retrieve` / `get` / `release` / `isOpened` subset of `cv2.VideoCapture`:
    `grab` decodes the next frame (kept in YUV), `retrieve` converts it to BGR in one
    libswscale call and turns it upright as OpenCV does (the stream's display rotation). `get`
    answers position (ms from the stream's start), frame rate, frame count and size. A packet
    the decoder rejects is skipped, as OpenCV's capture does; the frames it would have held
    are not counted.

    With `skip_nonref` (H.264 only), packets holding a non-reference picture are not decoded at
    all: `grab` still returns them, one each, with `discarded` set (their time is known, their
    image is not). No other picture is predicted from them, so every other frame is decoded
    exactly as without the option.
    """

    def __init__(
        self,
        uri: str,
        codec_options: dict[str, str] | None = None,
        skip_nonref: bool = False,
        *,
        container_options: dict[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        av = import_av()
        self._container = None
        self._frame = None
        self.discarded = False  # the frame last grabbed was left out undecoded
        self._shown = mask_credentials(uri)
        try:
            self._container = av.open(uri, options=container_options or {}, timeout=timeout)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as error:
            log.debug("%s: PyAV cannot open it: %s", self._shown, mask_credentials(str(error)))
            self.release()
            return
        context = stream.codec_context
        if skip_nonref and context.name != "h264":
            self.release()
            raise not_skippable(self._shown, context.name)
        context.thread_count = 1  # as OpenCV's capture here: streams decode in parallel already
        context.options = dict(codec_options or {})
        self._nal_length_size = nal_length_size(context.extradata) if skip_nonref else None
        self._stream = stream
        self._time_base = stream.time_base or Fraction(1, 1000)
        self._start = stream.start_time or 0
        self._frames = self._decode(av.FFmpegError)
        self._rotation = 0

    def _decode(self, errors: type[Exception]) -> Iterator:
        """Frames (or `_Discarded`) until the end; a read error ends them too, as OpenCV's
        `grab` then returns False (a file is then checked for completeness, a live stream
        reconnects)."""
        assert self._container is not None
        length_size = self._nal_length_size
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except errors as error:
                log.info("%s: reading stopped: %s", self._shown, mask_credentials(str(error)))
                return
            if length_size is not None and packet.size and is_non_reference(packet, length_size):
                yield _Discarded(packet.pts)
                continue
            try:
                yield from packet.decode()
            except errors as error:
                log.debug("%s: packet skipped: %s", self._shown, mask_credentials(str(error)))

    def isOpened(self) -> bool:  # OpenCV's name
        return self._container is not None

    def grab(self) -> bool:
        if self._container is None:
            return False
        self._frame = next(self._frames, None)
        self.discarded = isinstance(self._frame, _Discarded)
        if self._frame is not None and not self.discarded:
            self._rotation = int(self._frame.rotation or 0)
        return self._frame is not None

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        if self._frame is None or self.discarded:
            return False, None
        image = self._frame.to_ndarray(format="bgr24")
        if self._rotation in _ROTATIONS:
            image = cv2.rotate(image, _ROTATIONS[self._rotation])
        return True, image

    def get(self, prop: int) -> float:
        if self._container is None:
            return 0.0
        stream, frame = self._stream, self._frame
        if prop == cv2.CAP_PROP_POS_MSEC:
            if frame is None or frame.pts is None:
                return 0.0
            return float((frame.pts - self._start) * self._time_base * 1000)
        if prop == cv2.CAP_PROP_FPS:
            return float(stream.average_rate or stream.guessed_rate or 0.0)
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(stream.frames)
        turned = abs(self._rotation) in (90, 270)
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            context = stream.codec_context
            return float(context.height if turned else context.width)
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            context = stream.codec_context
            return float(context.width if turned else context.height)
        return 0.0

    def release(self) -> None:
        self._frame = None
        self.discarded = False
        if self._container is not None:
            self._container.close()
            self._container = None
