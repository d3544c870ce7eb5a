"""Annotated videos, one per stream: the frames with boxes, labels and scores drawn (and, with
tracking, track ids, trails, lines and zones)."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.atomic import OutputError, publish
from pipeline.detections import Detections, Result
from pipeline.outputs.draw import draw_motion, draw_result, draw_skipped
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamOutcome, StreamSummary

log = logging.getLogger(__name__)

# pip's OpenCV wheels carry no H.264 encoder (asking for `avc1` fails, and FFmpeg prints
# errors while failing), so MP4 gets MPEG-4 Part 2, which every desktop player reads;
# an AVI input gets MJPEG in AVI, like most AVI recordings.
_MP4 = ("mp4v", ".mp4")
_AVI = ("MJPG", ".avi")


def container_for(uri: str) -> tuple[str, str]:
    """(fourcc, suffix) for an annotated copy of `uri`."""
    return _AVI if uri.lower().endswith(".avi") else _MP4


def video_path(directory: Path, stream: str, uri: str) -> Path:
    """Where a stream's complete annotated video is: `DIR/<stream>.mp4` (`.avi` for AVI)."""
    return directory / f"{stream}{container_for(uri)[1]}"


# Below this much free space, a video that came out unreadable is put down to a full disk.
_NEARLY_FULL_BYTES = 1 << 20


@dataclass
class _Output:
    writer: cv2.VideoWriter
    size: tuple[int, int]
    partial: Path
    final: Path
    error: str | None = None
    written: int = 0  # frames in the file, repeats included
    last: np.ndarray | None = None  # the last frame written, repeated over skipped frames


@dataclass(frozen=True)
class _FrameItem:
    stream: str
    index: int  # the frame's number in its stream: frames not analysed leave gaps
    image: np.ndarray
    detections: Detections
    track_ids: tuple[int | None, ...] | None = None
    overlay: object | None = None
    motion: tuple[tuple[float, float, float, float], ...] = ()
    skipped: str | None = None


@dataclass(frozen=True)
class _FinishItem:
    stream: str
    keep: bool
    frames: int  # frames the stream decoded: the video's length in frames
    finished: threading.Event


class AnnotatedVideoSink:
    """Writes `DIR/<stream>.mp4` (or `.avi` for AVI inputs) with the detections drawn.

    Drawing and encoding run on one writer thread owned by the sink, behind a bounded queue,
    so OpenVINO's callback threads only hand frames over (and wait only when the writer is
    `max_queued` frames behind). Like `JsonlSink`, a video is written under a `.part` name and
    renamed when its stream finishes (only if it reached its end, with `keep_incomplete=False`).

    The video lasts as long as its source: a frame that was not analysed (`every`, `max_fps`,
    a live stream's drops) is filled with the last annotated one. A video that could not be
    written completely (a full disk, a failed rename) keeps its `.part` name and its stream's
    `finish` raises OutputError saying why.
    """

    def __init__(
        self, directory: str | Path, *, keep_incomplete: bool = True, max_queued: int = 32
    ) -> None:
        self.directory = Path(directory)
        self.keep_incomplete = keep_incomplete
        self._outputs: dict[str, _Output] = {}
        self._queue: queue.Queue[_FrameItem | _FinishItem | None] = queue.Queue(max_queued)
        self._thread = threading.Thread(target=self._write_loop, name="video-writer", daemon=True)
        self._lock = threading.Lock()  # guards starting the writer thread

    def path_for(self, stream: str, uri: str = "") -> Path:
        return video_path(self.directory, stream, uri)

    def open(self, stream: StreamInfo) -> None:
        fourcc, _ = container_for(stream.uri)
        final = self.path_for(stream.name, stream.uri)
        partial = final.with_name(f"{final.stem}.part{final.suffix}")  # keeps the container
        final.parent.mkdir(parents=True, exist_ok=True)
        size = (stream.width, stream.height)
        fps = stream.fps if stream.fps > 0 else 25.0
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not writer.isOpened():
            raise OutputError(f"{partial}: cannot write a {fourcc} video here")
        self._outputs[stream.name] = _Output(writer, size, partial, final)
        with self._lock:
            if not self._thread.is_alive():
                self._thread.start()

    def write(self, result: Result) -> None:
        frame = result.frame
        self._queue.put(
            _FrameItem(
                result.stream, frame.index, frame.image, result.detections, result.track_ids,
                result.overlay, result.motion, result.skipped,
            )
        )  # fmt: skip

    def finish(self, stream: StreamSummary) -> None:
        """Returns once the stream's video is complete on disk; raises if writing it failed."""
        output = self._outputs.get(stream.name)
        if output is None:  # the stream failed before it opened
            return
        keep = stream.status == StreamOutcome.DONE or self.keep_incomplete
        finished = threading.Event()
        self._queue.put(_FinishItem(stream.name, keep, stream.frames_decoded, finished))
        while not finished.wait(0.5):
            if not self._thread.is_alive():  # cannot happen, but must never hang a run
                output.error = output.error or f"{output.partial}: the video writer stopped"
                break
        del self._outputs[stream.name]
        if output.error:
            raise OutputError(output.error)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        for output in self._outputs.values():  # streams that never finished stay `.part`
            output.writer.release()
        self._outputs.clear()

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            output = self._outputs[item.stream]
            try:
                if isinstance(item, _FinishItem):
                    self._finish_output(output, item)
                elif output.error is None:
                    self._write_frame(output, item)
            except Exception as error:  # keep the writer alive for the other streams
                why = f"{output.partial}: writing failed: {error}"
                output.error = output.error or (
                    str(error) if isinstance(error, OutputError) else why
                )
                log.error("annotated video for %s failed: %s", item.stream, output.error)
            finally:
                if isinstance(item, _FinishItem):
                    item.finished.set()

    def _write_frame(self, output: _Output, item: _FrameItem) -> None:
        while output.last is not None and output.written < item.index:  # frames not analysed
            output.writer.write(output.last)
            output.written += 1
        image = item.image
        if (image.shape[1], image.shape[0]) != output.size:
            image = cv2.resize(image, output.size)
        else:
            image = image.copy()
        if item.motion:  # motion gating's debug view, under the rest
            draw_motion(image, item.motion, output.size[0] / item.image.shape[1])
        if item.skipped:
            draw_skipped(image, item.skipped)
        output.last = draw_result(image, item.detections, item.track_ids, item.overlay)
        output.writer.write(output.last)
        output.written += 1

    def _finish_output(self, output: _Output, item: _FinishItem) -> None:
        while output.last is not None and output.error is None and output.written < item.frames:
            output.writer.write(output.last)  # the frames after the last analysed one
            output.written += 1
        output.last = None
        output.writer.release()
        if output.error is None and output.written and not _readable(output.partial):
            # OpenCV's writer reports no error: a full disk shows as a file that does not play.
            free = shutil.disk_usage(output.partial.parent).free
            why = "the disk is full" if free < _NEARLY_FULL_BYTES else "it does not play"
            output.error = f"{output.partial}: the video could not be written ({why})"
        if output.error is None and item.keep:
            publish(output.partial, output.final)


def _readable(path: Path) -> bool:
    """The video opens and its first frame decodes."""
    capture = cv2.VideoCapture(str(path))
    try:
        return capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
