"""Live sources: RTSP/HTTP cameras and local capture devices, reconnecting on their own."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import cv2
import numpy as np

from sources.base import grab_and_retrieve
from sources.decoders import OPENCV, Capture, DecoderOptions
from sources.errors import SourceError, mask_credentials
from sources.file import DECODE_PARAMS, frame_size, plausible_fps
from sources.live_options import LiveOptions
from sources.pyav_capture import PyAVCapture
from sources.state import StreamState, StreamStateMachine, StreamStatus

log = logging.getLogger(__name__)

_NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
_DEVICE = re.compile(r"^(\d+|/dev/video\d+)$")
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
# A read that took this share of the read timeout ran into it: the stream has stalled, even if
# the decoder still had a frame to give back (it holds a few for reordering).
_STALL_SHARE = 0.9


def is_live_uri(uri: str) -> bool:
    """A network stream (rtsp, rtsps, http, https) or a capture device (`0`, `/dev/video0`)."""
    return (
        uri.split("://", 1)[0].lower() in _NETWORK_SCHEMES
        if "://" in uri
        else bool(_DEVICE.match(uri))
    )


_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


def configure_ffmpeg_capture(transport: str = "tcp", probe_seconds: float = 1.0) -> None:
    """Set how OpenCV's FFmpeg opens streams, for the whole process: RTSP over `tcp` (the
    default) or `udp`, and how long a new stream is probed before its first frame.

    OpenCV reads these options from the environment at each opening, so they are process-wide:
    call this before any stream opens (the CLI does, from `--rtsp-transport`); a `LiveSource`
    made without it sets the defaults if the variable is unset. Options already in
    `OPENCV_FFMPEG_CAPTURE_OPTIONS` (the user's) are kept and win; ours fill in the rest, so
    call this once. The probe is shortened from
    FFmpeg's 5 s because OpenCV opens one capture at a time, process-wide: measured here, an
    RTSP stream opened in 2.26 s with FFmpeg's default and 1.13 s with 1 s, and 4 cameras
    opened together took 9 s in all with the default.
    """
    if transport not in ("tcp", "udp"):
        raise ValueError(f"RTSP transport must be tcp or udp, not {transport!r}")
    ours = {"rtsp_transport": transport, "analyzeduration": str(round(probe_seconds * 1e6))}
    theirs = _parse_options(os.environ.get(_FFMPEG_OPTIONS, ""))
    os.environ[_FFMPEG_OPTIONS] = _format_options({**ours, **theirs})


# OpenCV's FFmpeg backend reads OPENCV_FFMPEG_CAPTURE_OPTIONS each time a capture opens; it
# has no per-capture way to pass FFmpeg options. A stream with its own RTSP transport sets
# the variable for its open and puts it back after, and every stream's open holds this lock
# meanwhile, so no other stream's open reads it then. This costs no parallelism: OpenCV opens
# one FFmpeg capture at a time, process-wide, anyway (its own lock). A file opened meanwhile
# may read the stream's value: only `rtsp_transport` differs, which FFmpeg's file demuxers do
# not take. Python's os.environ updates the C environment (setenv), read by OpenCV's getenv.
_OPEN_LOCK = threading.Lock()


def _stream_options(transport: str | None) -> dict[str, str]:
    """The FFmpeg options a stream opens with: the process-wide ones with `transport` as the
    RTSP transport (None: the process-wide ones as they are)."""
    options = _parse_options(os.environ.get(_FFMPEG_OPTIONS, ""))
    if transport is not None:
        options["rtsp_transport"] = transport
    return options


def capture_options(transport: str | None) -> str | None:
    """`_stream_options` in OpenCV's format (None if there are none at all)."""
    if transport is None:
        return os.environ.get(_FFMPEG_OPTIONS)
    return _format_options(_stream_options(transport))


@contextlib.contextmanager
def _capture_options(transport: str | None) -> Iterator[None]:
    """Hold the open lock, with the stream's own options in the environment meanwhile."""
    with _OPEN_LOCK:
        before = os.environ.get(_FFMPEG_OPTIONS)
        wanted = capture_options(transport)
        if wanted == before or wanted is None:
            yield
            return
        os.environ[_FFMPEG_OPTIONS] = wanted
        try:
            yield
        finally:
            if before is None:
                del os.environ[_FFMPEG_OPTIONS]
            else:
                os.environ[_FFMPEG_OPTIONS] = before


def _format_options(options: dict[str, str]) -> str:
    """`key;value|key;value`, OpenCV's format."""
    return "|".join(f"{key};{value}" for key, value in options.items())


def _parse_options(text: str) -> dict[str, str]:
    """`key;value|key;value` (OpenCV's format) as a dict, in order."""
    pairs = (item.partition(";") for item in text.split("|") if item.strip())
    return {key.strip(): value for key, _, value in pairs}


class LiveSource:
    """A camera or network stream that reconnects with back-off whenever it is lost.

    `open` only checks the address: connecting happens in `grab` (or `read`), on the decoder
    thread, so an unreachable camera does not hold up the others. `grab` steps to the next
    frame without converting it and `retrieve` converts it (a `GrabbingSource`); `read` does
    both. They return frames while connected;
    when the stream ends, errors or stalls, it reconnects (state `reconnecting`) and carries
    on, until `interrupt` (then it returns None) or `max_retries` failed attempts in a row
    (then it raises SourceError). Frames are numbered by the decoder across reconnections;
    `pts_ms` is the stream's own timestamp, which restarts with each connection. `decoder`:
    OpenCV's capture (default) or PyAV with its options, for network streams (devices use
    OpenCV's V4L2 capture).
    """

    live = True
    declared_frames = 0

    def __init__(
        self,
        uri: str,
        name: str | None = None,
        options: LiveOptions | None = None,
        decoder: DecoderOptions = OPENCV,
    ):
        self.uri = uri
        self.decoder = decoder
        self.name = name or _default_name(uri)
        self.options = options or LiveOptions()
        self.size = (0, 0)
        self.fps = 0.0
        self._capture: Capture | None = None
        self._interrupted = threading.Event()
        self._failures = 0  # failed attempts in a row
        self._stalled = False
        self._state = StreamStateMachine(self._log_change)
        if _FFMPEG_OPTIONS not in os.environ:
            configure_ffmpeg_capture()

    # -- VideoSource -------------------------------------------------------------------------

    def open(self) -> None:
        if "://" in self.uri:
            parts = urlsplit(self.uri)
            if parts.scheme.lower() not in _NETWORK_SCHEMES or not parts.hostname:
                raise SourceError(f"{self._shown}: not a stream address; expected rtsp://HOST/PATH")

    def read(self) -> tuple[np.ndarray, float] | None:
        return grab_and_retrieve(self)

    def grab(self) -> float | None:
        while not self._interrupted.is_set():
            if self._capture is None:
                if self._connect():
                    return self._capture.get(cv2.CAP_PROP_POS_MSEC)
                continue
            if self._stalled:  # the last grab ran into the read timeout
                self._lose(f"no frame for {self.options.read_timeout:g} s (stalled)")
                continue
            started = time.monotonic()
            ok = self._capture.grab()
            took = time.monotonic() - started
            self._stalled = took >= _STALL_SHARE * self.options.read_timeout
            if ok:
                return self._capture.get(cv2.CAP_PROP_POS_MSEC)
            if not self._stalled:
                self._lose("the stream ended or broke off")
        return None

    @property
    def discarded(self) -> bool:
        """The frame last grabbed was left out undecoded (`DecoderOptions.skip_nonref`)."""
        return bool(getattr(self._capture, "discarded", False))  # OpenCV's never are

    def retrieve(self) -> np.ndarray | None:
        """The frame last grabbed; None if it could not be converted (a corrupt camera frame):
        the stream then counts as lost and the next `grab` reconnects."""
        ok, image = (False, None) if self._capture is None else self._capture.retrieve()
        if ok and image is not None:
            return image
        if self._capture is not None:
            self._lose("a frame could not be converted")
        return None

    def release(self) -> None:
        self._close_capture()
        self._state.stop()

    def interrupt(self) -> None:
        self._interrupted.set()

    # -- status ------------------------------------------------------------------------------

    def status(self) -> StreamStatus:
        return self._state.status()

    @property
    def _shown(self) -> str:
        return mask_credentials(self.uri)

    # -- connecting --------------------------------------------------------------------------

    def _connect(self) -> bool:
        """One connection attempt: True with its first frame grabbed, or False after waiting
        the back-off (or an error once `max_retries` attempts in a row have failed)."""
        # OpenCV opens one FFmpeg capture at a time, process-wide (a global lock), so a host
        # that does not answer would hold up every other stream's (re)connection for the whole
        # open timeout. A plain TCP connection first, outside that lock, fails fast instead.
        error = self._unreachable()
        capture = None if error else _open_capture(self.uri, self.options, self.decoder)
        if capture is not None:
            if capture.grab():
                self._capture, self._failures, self._stalled = capture, 0, False
                self.size = frame_size(capture)
                self.fps = plausible_fps(float(capture.get(cv2.CAP_PROP_FPS) or 0.0))
                self._state.to(StreamState.STREAMING)
                return True
            capture.release()
        self._failures += 1
        error = error or self._no_stream(opened=capture is not None)
        retries = self.options.max_retries
        if retries is not None and self._failures > retries:
            self._state.to(StreamState.FAILED, error)
            raise SourceError(f"{error} (gave up after {retries} retries)")
        if self._state.state is not StreamState.RECONNECTING:
            self._state.to(StreamState.RECONNECTING, error)
        delay = self.options.backoff.delay(self._failures)
        log.warning("stream %s: %s; retrying in %.1f s", self.name, error, delay)
        self._interrupted.wait(delay)
        return False

    def _lose(self, reason: str) -> None:
        self._close_capture()
        self._state.to(StreamState.RECONNECTING, f"{self._shown}: {reason}")
        log.warning("stream %s: %s; reconnecting", self.name, reason)

    def _close_capture(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _unreachable(self) -> str | None:
        """Why the stream's host cannot be reached over TCP, or None (also for devices)."""
        if _DEVICE.match(self.uri):
            return None
        host, port = _host_port(self.uri)
        try:
            with socket.create_connection((host, port), timeout=self.options.open_timeout):
                return None
        except OSError as error:
            reason = (error.strerror or str(error) or type(error).__name__).lower()
            return f"{self._shown}: cannot reach {host}:{port} ({reason}); check the address"

    def _no_stream(self, opened: bool) -> str:
        """A one-line reason for an attempt that reached the host but got no frame."""
        if _DEVICE.match(self.uri):
            return f"camera {self.uri}: cannot open (no such device, or busy); check the device"
        if opened:
            return f"{self._shown}: connected, but no frame arrived; check the stream"
        host, port = _host_port(self.uri)
        return (
            f"{self._shown}: the server at {host}:{port} answered, but no video stream opened "
            "at this path; check the path and credentials"
        )

    def _log_change(self, status: StreamStatus) -> None:
        if status.state is StreamState.STREAMING:
            again = f" (reconnect #{status.reconnects})" if status.reconnects else ""
            log.info(
                "stream %s: streaming %dx%d at %.1f fps%s",
                self.name, self.size[0], self.size[1], self.fps, again,
            )  # fmt: skip


def _host_port(uri: str) -> tuple[str, int]:
    parts = urlsplit(uri)
    return parts.hostname or "", parts.port or _DEFAULT_PORTS[parts.scheme.lower()]


def _default_name(uri: str) -> str:
    if _DEVICE.match(uri):
        return f"camera{uri.removeprefix('/dev/video')}"
    parts = urlsplit(uri)
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", tail or parts.hostname or "stream").strip("-")


def _open_capture(
    uri: str, options: LiveOptions, decoder: DecoderOptions = OPENCV
) -> Capture | None:
    if decoder.decoder == "pyav" and not _DEVICE.match(uri):
        capture = PyAVCapture(
            uri, decoder.codec_options, decoder.skip_nonref,
            container_options=_stream_options(options.rtsp_transport),
            timeout=(options.open_timeout, options.read_timeout),
        )  # fmt: skip
        return capture if capture.isOpened() else None
    params = [
        *DECODE_PARAMS,
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(options.read_timeout * 1000),
    ]  # fmt: skip
    if _DEVICE.match(uri):
        target: str | int = int(uri) if uri.isdigit() else uri
        capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
    else:
        with _capture_options(options.rtsp_transport):
            capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
    if capture.isOpened():
        return capture
    capture.release()
    return None
