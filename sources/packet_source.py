"""A live stream decoded from the packets another reader demuxes (the camera's recorder), so that
one connection to the camera serves both the recording and the analysis.

The reader (a `CameraRecorder`, on its own thread) hands each connection's codec and packets to
a `PacketFeed`; a `PacketSource` decodes them on the decoder thread with a decoder of its own.
The feed is bounded and never makes the reader wait: when the analysis falls behind, packets are
left out up to the next keyframe (the decoder can start again only there) and each is counted
as a lost frame, dropped by the live policy. The reader owns the connection: reconnecting,
back-off and timeouts are its; the source reports them as its state.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from sources.base import grab_and_retrieve
from sources.decoders import OPENCV, DecoderOptions
from sources.errors import SourceError, mask_credentials
from sources.file import plausible_fps
from sources.h264_refs import is_non_reference, nal_length_size
from sources.live_options import LiveOptions
from sources.pyav_capture import import_av, not_skippable
from sources.state import StreamState, StreamStateMachine, StreamStatus

log = logging.getLogger(__name__)

# About three seconds of a 30 fps camera: enough for a decoder busy for a moment (a model
# compiling, a burst of work on the other streams), small enough to stay live.
DEFAULT_CAPACITY = 90
_WAIT = 0.25  # seconds `grab` waits for a packet before it checks for `interrupt`


@dataclass(frozen=True, slots=True)
class _Connected:
    codec: str
    extradata: bytes | None
    time_base: Fraction
    fps: float


@dataclass(frozen=True, slots=True)
class _Packet:
    data: bytes
    pts: int | None
    keyframe: bool


@dataclass(frozen=True, slots=True)
class _Lost:
    count: int  # packets left out by the feed, up to the next keyframe


@dataclass(frozen=True, slots=True)
class _Disconnected:
    reason: str
    was_connected: bool  # False: the attempt never reached the camera


@dataclass(frozen=True, slots=True)
class _Ended:
    pass  # the reader stopped: no more connections


class PacketFeed:
    """One camera's connections, handed from its reader's thread to one decoder: the reader
    calls `connected`, `packet`, `disconnected` and `ended` (a packet observer of
    `CameraRecorder`), the source `start`s taking and `take`s. Until `start`, nothing is kept
    (the analysis has not begun: nothing is lost either); after it, the first packets kept are
    from a keyframe on."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._items: deque = deque()
        self._ready = threading.Condition()
        self._taking = False
        self._stream: _Connected | None = None  # the connection now open, if any
        self._waiting_keyframe = True
        self._overflowed = False  # packets are being left out for want of room
        self._lost = 0  # left out since the last packet kept, not yet reported

    # -- the reader's side ------------------------------------------------------------------

    def connected(self, stream) -> None:
        """A connection opened, its first video stream `stream` (a PyAV stream)."""
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        info = _Connected(
            context.name,
            bytes(context.extradata) if context.extradata else None,
            stream.time_base or Fraction(1, 90000),
            plausible_fps(float(rate or 0.0)),
        )
        with self._ready:
            self._stream = info
            self._waiting_keyframe, self._overflowed = True, False
            if self._taking:
                self._put(info)

    def packet(self, recorded) -> None:
        """A packet kept by the reader (a `RecordedPacket`); copied, as the reader goes on
        using it."""
        packet = recorded.packet
        with self._ready:
            if not self._taking or self._stream is None:
                return
            if self._waiting_keyframe and not recorded.keyframe:
                self._lost += self._overflowed  # before a first keyframe: not yet taking
                return
            if len(self._items) >= self._capacity:
                self._waiting_keyframe = self._overflowed = True
                self._lost += 1
                return
            self._waiting_keyframe = self._overflowed = False
            self._flush_lost()
            self._put(_Packet(bytes(packet), packet.pts, recorded.keyframe))

    def disconnected(self, reason: str, was_connected: bool = True) -> None:
        """The connection dropped (or an attempt failed, `was_connected` False)."""
        with self._ready:
            self._stream = None
            if self._taking:
                self._flush_lost()
                self._put(_Disconnected(reason, was_connected))

    def ended(self) -> None:
        """The reader has stopped for good."""
        with self._ready:
            self._stream = None
            self._flush_lost()
            self._put(_Ended())

    # -- the decoder's side -----------------------------------------------------------------

    def start(self) -> None:
        """Begin keeping packets (from the next keyframe of the connection now open)."""
        with self._ready:
            if self._taking:
                return
            self._taking = True
            self._waiting_keyframe = True
            if self._stream is not None:
                self._put(self._stream)

    def take(self, timeout: float):
        """The next item, or None after `timeout` seconds without one."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def _put(self, item) -> None:
        self._items.append(item)
        self._ready.notify()

    def _flush_lost(self) -> None:
        if self._lost:
            self._items.append(_Lost(self._lost))
            self._lost = 0


class PacketSource:
    """A `GrabbingSource` decoding the camera `uri` from `feed`, which its reader fills;
    `on_release` is called once, when it is released (to stop the reader filling it).

    States as a `LiveSource`'s: connecting until the first frame, reconnecting while the reader
    has no connection, failed after `options.max_retries` failed attempts in a row. A frame
    the feed left out (analysis behind) is grabbed as `lost`: it counts as dropped. With
    `decoder.skip_nonref`, H.264 pictures no other is predicted from are `discarded` undecoded.
    """

    live = True
    declared_frames = 0

    def __init__(
        self,
        uri: str,
        name: str,
        feed: PacketFeed,
        options: LiveOptions | None = None,
        decoder: DecoderOptions = OPENCV,
        *,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self.uri = uri
        self.name = name
        self.options = options or LiveOptions()
        self.size = (0, 0)
        self.fps = 0.0
        self.discarded = False  # the frame last grabbed was left out undecoded
        self.lost = False  # the frame last grabbed was left out by the feed (dropped)
        self._feed = feed
        self._on_release = on_release
        self._decoder = decoder
        self._av = import_av()
        self._interrupted = threading.Event()
        self._state = StreamStateMachine()
        self._context = None
        self._connection: _Connected | None = None
        self._first_pts: int | None = None
        self._length_size: int | None = None  # H.264 NAL length size, when skipping non-refs
        self._frames: deque = deque()  # decoded, not yet grabbed
        self._lost_left = 0
        self._pts_ms = 0.0
        self._frame = None
        self._failures = 0
        self._ended = False  # the reader has stopped: what is left is grabbed, then the end

    # -- VideoSource -------------------------------------------------------------------------

    def open(self) -> None:
        self._feed.start()

    def read(self) -> tuple[np.ndarray, float] | None:
        return grab_and_retrieve(self)

    def grab(self) -> float | None:
        self._feed.start()  # idempotent: a source used without `open` starts here
        self._frame, self.discarded, self.lost = None, False, False
        while not self._interrupted.is_set():
            if self._lost_left:
                self._lost_left -= 1
                self.lost = True
                return self._pts_ms
            if self._frames:
                return self._next_frame()
            if self._ended:
                return None
            item = self._feed.take(_WAIT)
            if isinstance(item, _Ended):
                self._drain()
                self._ended = True
            elif item is not None:
                self._handle(item)
        return None

    def retrieve(self) -> np.ndarray | None:
        if self._frame is None:
            return None
        return self._frame.to_ndarray(format="bgr24")

    def release(self) -> None:
        if self._on_release is not None:
            self._on_release()
            self._on_release = None
        self._context = None
        self._frames.clear()
        self._state.stop()

    def interrupt(self) -> None:
        self._interrupted.set()

    def status(self) -> StreamStatus:
        return self._state.status()

    # -- decoding ----------------------------------------------------------------------------

    def _next_frame(self) -> float:
        frame = self._frames.popleft()
        if isinstance(frame, _Packet):  # a non-reference picture, left out
            self.discarded = True
            self._pts_ms = self._ms(frame.pts)
            return self._pts_ms
        if self._state.state is not StreamState.STREAMING:
            self.size = (frame.width, frame.height)
            reconnects = self._state.to(StreamState.STREAMING).reconnects
            again = f" (reconnect #{reconnects})" if reconnects else ""
            log.info(
                "stream %s: streaming %dx%d at %.1f fps from its recorder's connection%s",
                self.name, frame.width, frame.height, self.fps, again,
            )  # fmt: skip
        self._frame = frame
        self._pts_ms = self._ms(frame.pts)
        return self._pts_ms

    def _handle(self, item) -> None:
        if isinstance(item, _Connected):
            self._drain()
            self._connection, self._first_pts = item, None
            self.fps = item.fps
            self._context = self._new_context(item)
            skip = self._decoder.skip_nonref
            self._length_size = nal_length_size(item.extradata) if skip else None
        elif isinstance(item, _Packet):
            self._decode(item)
        elif isinstance(item, _Lost):
            self._lost_left += item.count
        elif isinstance(item, _Disconnected):
            self._drain()
            self._context = None
            self._lose(item)

    def _new_context(self, stream: _Connected):
        if self._decoder.skip_nonref and stream.codec != "h264":
            raise not_skippable(mask_credentials(self.uri), stream.codec)
        context = self._av.CodecContext.create(stream.codec, "r")
        if stream.extradata:
            context.extradata = stream.extradata
        context.thread_count = 1  # as every decoder here: streams decode in parallel already
        context.options = dict(self._decoder.codec_options)
        return context

    def _decode(self, item: _Packet) -> None:
        if self._context is None:
            return  # a packet of a connection never announced: cannot be decoded
        if self._first_pts is None:
            self._first_pts = item.pts
        if self._length_size is not None and is_non_reference(item.data, self._length_size):
            self._frames.append(item)
            return
        packet = self._av.Packet(item.data)
        packet.pts = packet.dts = item.pts
        try:
            self._frames.extend(self._context.decode(packet))
        except self._av.FFmpegError as error:
            log.debug("stream %s: packet skipped: %s", self.name, error)

    def _drain(self) -> None:
        """The frames the decoder still holds (for reordering), at the end of a connection."""
        if self._context is not None:
            try:
                self._frames.extend(self._context.decode(None))
            except self._av.FFmpegError as error:
                log.debug("stream %s: flushing the decoder: %s", self.name, error)
            self._context = None

    def _lose(self, item: _Disconnected) -> None:
        if item.was_connected:
            self._failures = 0
        else:
            self._failures += 1
        retries = self.options.max_retries
        if retries is not None and self._failures > retries:
            self._state.to(StreamState.FAILED, item.reason)
            raise SourceError(f"{item.reason} (gave up after {retries} retries)")
        if self._state.state is not StreamState.RECONNECTING:
            self._state.to(StreamState.RECONNECTING, item.reason)
            log.warning("stream %s: %s; its recorder reconnects", self.name, item.reason)

    def _ms(self, pts: int | None) -> float:
        if pts is None or self._connection is None:
            return self._pts_ms
        return float((pts - (self._first_pts or 0)) * self._connection.time_base * 1000)
