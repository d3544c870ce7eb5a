"""Tracking events as JSON Lines, one file per stream: `DIR/<stream>.events.jsonl`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pipeline.analytics.events import Event
from pipeline.detections import Result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.outputs.sinks.jsonl import PARTIAL_SUFFIX
from pipeline.summary import StreamOutcome, StreamSummary


def events_path(directory: Path, stream: str) -> Path:
    """Where a stream's complete events are: `DIR/<stream>.events.jsonl`."""
    return directory / f"{stream}.events.jsonl"


class EventsJsonlSink:
    """Writes one line per event (`Event.to_dict`), in order. Like `JsonlSink`, a stream's
    file is written as `<stream>.events.jsonl.part` and renamed when the stream finishes
    (only if it reached its end, with `keep_incomplete=False`)."""

    def __init__(self, directory: str | Path, *, keep_incomplete: bool = True) -> None:
        self.directory = Path(directory)
        self.keep_incomplete = keep_incomplete
        self._files: dict[str, IO[str]] = {}

    def path_for(self, stream: str) -> Path:
        return events_path(self.directory, stream)

    def open(self, stream: StreamInfo) -> None:
        final = self.path_for(stream.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self._files[stream.name] = partial.open("w", encoding="utf-8")

    def write(self, result: Result) -> None:
        pass  # the events come through write_events

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        file = self._files[stream]
        for event in events:
            file.write(json.dumps(event.to_dict()) + "\n")

    def finish(self, stream: StreamSummary) -> None:
        file = self._files.pop(stream.name, None)
        if file is None:  # the stream failed before it opened
            return
        file.flush()
        os.fsync(file.fileno())
        file.close()
        if stream.status == StreamOutcome.DONE or self.keep_incomplete:
            os.replace(file.name, self.path_for(stream.name))

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
