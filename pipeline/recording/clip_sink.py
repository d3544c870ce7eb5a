"""A sink that turns tracking events into event clips of the streams being recorded, and lists
them in `DIR/<stream>.clips.jsonl`: one line per event with the path of the clip holding it."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pipeline.analytics.events import Event
from pipeline.detections import Result
from pipeline.recording.clips import ClipOptions, EventClips
from pipeline.summary import StreamSummary


class EventClipSink:
    """For each event of a stream recorded under `recording/<stream>`, a clip in
    `clips/<stream>/` (`track_end`: the track's whole life), and a line in
    `clips/<stream>.clips.jsonl`. Event times are the frames' capture times (wall clock), as
    the recording's are."""

    def __init__(self, recording: Path, clips: Path, options: ClipOptions | None = None) -> None:
        self.recording = recording
        self.clips = clips
        self.options = options or ClipOptions()
        self._cutters: dict[str, EventClips] = {}
        self._index: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def open(self, stream) -> None:
        with self._lock:
            self.clips.mkdir(parents=True, exist_ok=True)
            cutter = EventClips(stream.name, self.recording / stream.name,
                                self.clips / stream.name, self.options)  # fmt: skip
            self._cutters[stream.name] = cutter.start()
            path = self.clips / f"{stream.name}.clips.jsonl"
            self._index[stream.name] = path.open("a", encoding="utf-8")

    def write(self, result: Result) -> None:
        pass  # the events come through write_events

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        cutter, index = self._cutters[stream], self._index[stream]
        for event in events:
            end = event.captured_at
            start = end - (event.duration_s or 0.0) if event.type == "track_end" else end
            clip = cutter.add(event.type, start, end)
            line = {"type": event.type, "track_id": event.track_id, "frame": event.frame,
                    "captured_at": round(event.captured_at, 3), "clip": str(clip)}  # fmt: skip
            index.write(json.dumps(line) + "\n")
        index.flush()

    def finish(self, stream: StreamSummary) -> None:
        with self._lock:
            cutter = self._cutters.pop(stream.name, None)
            index = self._index.pop(stream.name, None)
        if cutter is not None:
            cutter.stop()
        if index is not None:
            index.close()

    def close(self) -> None:
        with self._lock:
            cutters, indexes = list(self._cutters.values()), list(self._index.values())
            self._cutters.clear()
            self._index.clear()
        for cutter in cutters:
            cutter.stop()
        for index in indexes:
            index.close()
