"""One camera recorded: its packets demuxed (never decoded) and copied into segments, on a
thread of its own that reconnects when the camera drops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.recording.segments import SegmentWriter, repair_unfinished
from sources.backoff import Backoff
from sources.errors import mask_credentials
from sources.live import is_live_uri
from sources.pyav_capture import import_av

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordOptions:
    """How a camera is recorded: segments of about `segment_seconds` (cut at the first
    keyframe after that), RTSP over `rtsp_transport`, (open, read) `timeout` in seconds."""

    segment_seconds: float = 60.0
    rtsp_transport: str = "tcp"
    timeout: tuple[float, float] = (5.0, 5.0)
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=10.0))

    def __post_init__(self) -> None:
        if not self.segment_seconds > 0:
            raise ValueError(f"segment_seconds must be > 0, not {self.segment_seconds}")


@dataclass(frozen=True, slots=True)
class RecordedPacket:
    """A packet as it arrived, for observers (the event-clip ring): its bytes are not copied."""

    packet: object  # av.Packet
    keyframe: bool
    time: float  # wall time (Unix seconds) the packet's picture was taken, as estimated


class PacketObserver(Protocol):
    """Sees a recorder's connections and the packets it keeps (on the recorder's thread: it
    must not block): a `sources.packet_source.PacketFeed` decoding them for analysis."""

    def connected(self, stream) -> None: ...  # a PyAV video stream, opened

    def packet(self, recorded: RecordedPacket) -> None: ...

    def disconnected(self, reason: str, was_connected: bool = True) -> None: ...

    def ended(self) -> None: ...  # the recorder has stopped


class CameraRecorder:
    """Records `url` into `folder` (one segment file after another) until `stop`.

    A dropped connection closes the segment being written (it is complete up to there) and the
    next connection starts a new one: a gap in time between two files, never a corrupt file.
    A file (not a live URL) is recorded once, to its end, on a timeline of its own: media time
    t from the file's start lies at `origin` + t (a file is read faster than real time).
    Segments start at a keyframe; packets before the first keyframe of a connection are left
    out. `on_segment` is called with each finished segment's path; `on_packet` with every
    packet kept (on the recorder's thread). `subscribe` adds a `PacketObserver`, that also
    learns of each connection: one demuxed connection then serves recording and analysis.
    """

    def __init__(
        self,
        name: str,
        url: str,
        folder: Path,
        options: RecordOptions | None = None,
        *,
        on_segment: Callable[[Path], None] | None = None,
        on_packet: Callable[[RecordedPacket], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self.folder = folder
        self.options = options or RecordOptions()
        self._on_segment = on_segment or (lambda path: None)
        self._on_packet = on_packet
        self._clock = clock
        self._live = is_live_uri(url)
        self.origin: float | None = None if self._live else clock()
        self._until = float("-inf")  # the newest packet written, on the recording's clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observers: tuple[PacketObserver, ...] = ()
        self._observers_lock = threading.Lock()  # also orders `connected` before packets
        self._stream = None  # the video stream of the connection now open
        self._finished = False  # the thread is done: observers have been told `ended`
        self.segments_written = 0
        self.connections = 0
        self.error: BaseException | None = None

    def start(self) -> CameraRecorder:
        for made in repair_unfinished(self.folder):
            self._on_segment(made)
        self._thread = threading.Thread(target=self._run, name=f"record-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its segment and end; waits up to `timeout` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the recording to end by itself (a file, at its end); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    @property
    def recorded_until(self) -> float:
        """The recording's time of its newest packet written (+inf once the recorder has
        ended: all it recorded is on disk)."""
        return self._until

    def subscribe(self, observer: PacketObserver) -> None:
        """Tell `observer` of every connection and packet from now on (of the connection now
        open, if any, at once); after the recorder has ended, it learns that at once."""
        with self._observers_lock:
            self._observers = (*self._observers, observer)
            if self._stream is not None:
                observer.connected(self._stream)
            ended = self._finished
        if ended:
            observer.ended()

    def unsubscribe(self, observer: PacketObserver) -> None:
        with self._observers_lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def __enter__(self) -> CameraRecorder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                if self._record_once():
                    attempt = 0
                if not self._live:
                    break  # a file ends once
                attempt += 1
                if self._stop.wait(self.options.backoff.delay(attempt)):
                    break
        except BaseException as error:  # re-raised by whoever checks `error`
            log.exception("%s: recording failed", self.name)
            self.error = error
        finally:
            self._until = float("inf")
            with self._observers_lock:
                self._finished = True
                observers = self._observers
            for observer in observers:
                observer.ended()

    def _open(self, av):
        options = {}
        if self.url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.options.rtsp_transport
        return av.open(self.url, options=options, timeout=self.options.timeout)

    def _record_once(self) -> bool:
        """One connection: record until it drops or `stop`. True if any packet arrived."""
        av = import_av()
        shown = mask_credentials(self.url)
        try:
            source = self._open(av)
        except (av.FFmpegError, OSError) as error:
            log.info("%s: cannot open %s for recording: %s", self.name, shown, error)
            self._disconnected(f"{shown}: cannot open it ({error}); check the address", False)
            return False
        self.connections += 1
        writer: SegmentWriter | None = None
        received = False
        reason = f"{shown}: the stream ended or broke off"
        try:
            stream = source.streams.video[0]
            with self._observers_lock:
                self._stream = stream
                for observer in self._observers:
                    observer.connected(stream)
            timestamps = _Timestamps(stream)
            start = None if self.origin is None else stream.start_time  # a file's start
            clock = _WallClock(stream.time_base, self.origin, start)
            packets = source.demux(stream)
            while not self._stop.is_set():
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.FFmpegError, OSError) as error:
                    log.info("%s: recording connection lost: %s", self.name, error)
                    reason = f"{shown}: connection lost ({error})"
                    break
                if not packet.size:
                    continue
                received = True
                for ready in timestamps.fill(packet):
                    writer = self._keep(ready, stream, writer, clock)
        except IndexError:
            log.warning("%s: %s has no video stream to record", self.name, shown)
            reason = f"{shown}: no video stream in it; check the stream"
        finally:
            if writer is not None:
                self._finish(writer, clock)
            source.close()
            self._disconnected(reason, received)
        return received

    def _disconnected(self, reason: str, was_connected: bool) -> None:
        with self._observers_lock:
            self._stream = None
            observers = self._observers
        for observer in observers:
            observer.disconnected(reason, was_connected)

    def _keep(
        self, packet, stream, writer: SegmentWriter | None, clock: _WallClock
    ) -> SegmentWriter | None:
        """Write `packet`, into a new segment if it is a keyframe and the segment is long
        enough (or there is none yet); before the first keyframe, nothing is written."""
        now = clock.wall(packet, self._clock())
        if packet.is_keyframe and (
            writer is None or writer.duration >= self.options.segment_seconds
        ):
            self._finish(writer, clock)
            writer = SegmentWriter(self.folder, now, stream)
        if writer is None:
            return None  # waiting for the first keyframe
        observers = self._observers
        if self._on_packet is not None or observers:
            recorded = RecordedPacket(packet, packet.is_keyframe, now)
            if self._on_packet is not None:
                self._on_packet(recorded)
            for observer in observers:
                observer.packet(recorded)
        writer.write(packet)
        self._until = now
        return writer

    def _finish(self, writer: SegmentWriter | None, clock: _WallClock) -> None:
        """Close `writer`, named after its first packet's time by the clock's best anchor."""
        if writer is None:
            return None
        made = writer.close(clock.at(writer.first_dts))
        if made is not None:
            self.segments_written += 1
            log.debug("%s: segment %s (%.2f s)", self.name, made.name, writer.duration)
            self._on_segment(made)
        return None


class _Timestamps:
    """Gives packets without a timestamp one: RTSP's first packet often has none (FFmpeg knows
    the time only from the next), so it is held until then and placed one frame before it;
    a later one goes one frame after the packet before it."""

    def __init__(self, stream) -> None:
        rate = stream.average_rate or stream.guessed_rate
        self._step = max(1, round(1 / (rate * stream.time_base))) if rate else 1
        self._held = None
        self._last: int | None = None

    def fill(self, packet) -> list:
        """The packets ready to write, in order, each with a timestamp."""
        if packet.dts is None and packet.pts is None:
            if self._last is None:
                self._held = packet if packet.is_keyframe else self._held
                return []
            packet.dts = packet.pts = self._last + self._step
        if packet.dts is None:
            packet.dts = packet.pts
        ready = []
        if self._held is not None:
            self._held.dts = self._held.pts = packet.dts - self._step
            ready.append(self._held)
            self._held = None
        self._last = packet.dts
        ready.append(packet)
        return ready


class _WallClock:
    """The wall time of each packet of one connection: its stream time laid on the earliest
    arrival seen. Packets arrive late (the demuxer buffers the first seconds while probing, the
    network bunches them), never early, so arrival - stream time is smallest for the packet
    delayed least. A file is read faster than real time: its packets are laid on a fixed
    `origin` instead, stream time `start` (the file's start) at `origin`."""

    def __init__(self, time_base, origin: float | None = None, start: int | None = None) -> None:
        self._time_base = time_base
        self._refine = origin is None
        self._first = start  # the stream time laid on the anchor (live: the first packet's)
        self._anchor = float("inf") if origin is None else origin

    def wall(self, packet, arrival: float) -> float:
        if self._first is None:
            self._first = packet.dts
        offset = float((packet.dts - self._first) * self._time_base)
        if self._refine:
            self._anchor = min(self._anchor, arrival - offset)
        return self._anchor + offset

    def at(self, dts: int) -> float:
        """The wall time of stream time `dts`, by the best anchor so far."""
        return self._anchor + float((dts - (self._first or 0)) * self._time_base)
