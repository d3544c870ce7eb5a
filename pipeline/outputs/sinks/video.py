"""Annotated videos, one per stream: the frames with boxes, labels and scores drawn (and, with
tracking, track ids, trails, lines and zones)."""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.detections import Detections, Result
from pipeline.outputs.draw import draw_result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamSummary

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


@dataclass
class _Output:
    writer: cv2.VideoWriter
    size: tuple[int, int]
    partial: Path
    final: Path
    error: str | None = None


@dataclass(frozen=True)
class _FrameItem:
    stream: str
    image: np.ndarray
    detections: Detections
    track_ids: tuple[int | None, ...] | None = None
    overlay: object | None = None


@dataclass(frozen=True)
class _FinishItem:
    stream: str
    keep: bool
    finished: threading.Event


class AnnotatedVideoSink:
    """Writes `DIR/<stream>.mp4` (or `.avi` for AVI inputs) with the detections drawn.

    Drawing and encoding run on one writer thread owned by the sink, behind a bounded queue,
    so OpenVINO's callback threads only hand frames over (and wait only when the writer is
    `max_queued` frames behind). Like `JsonlSink`, a video is written under a `.part` name and
    renamed when its stream finishes (only if it reached its end, with `keep_incomplete=False`).
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
            raise OSError(f"{partial}: cannot write a {fourcc} video here")
        self._outputs[stream.name] = _Output(writer, size, partial, final)
        with self._lock:
            if not self._thread.is_alive():
                self._thread.start()

    def write(self, result: Result) -> None:
        self._queue.put(
            _FrameItem(
                result.stream, result.frame.image, result.detections, result.track_ids,
                result.overlay,
            )
        )  # fmt: skip

    def finish(self, stream: StreamSummary) -> None:
        """Returns once the stream's video is complete on disk; raises if writing it failed."""
        output = self._outputs.get(stream.name)
        if output is None:  # the stream failed before it opened
            return
        keep = stream.status == "done" or self.keep_incomplete
        finished = threading.Event()
        self._queue.put(_FinishItem(stream.name, keep, finished))
        finished.wait()
        del self._outputs[stream.name]
        if output.error:
            raise OSError(output.error)

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
            if isinstance(item, _FinishItem):
                output.writer.release()
                if item.keep and output.error is None:
                    os.replace(output.partial, output.final)
                item.finished.set()
                continue
            if output.error is not None:
                continue
            try:
                image = item.image
                if (image.shape[1], image.shape[0]) != output.size:
                    image = cv2.resize(image, output.size)
                else:
                    image = image.copy()
                output.writer.write(
                    draw_result(image, item.detections, item.track_ids, item.overlay)
                )
            except Exception as error:  # keep the writer alive for the other streams
                output.error = f"{output.partial}: writing failed: {error}"
                log.exception("annotated video for %s failed", item.stream)
