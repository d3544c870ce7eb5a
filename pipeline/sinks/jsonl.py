"""JSON Lines files, one per stream: `DIR/<stream>.jsonl`, one line per frame."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pipeline.detections import Result
from pipeline.sinks.base import StreamInfo


class JsonlSink:
    """Writes `{"stream", "frame", "pts_ms", "latency_ms", "detections"}` per frame."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._files: dict[str, IO[str]] = {}

    def path_for(self, stream: str) -> Path:
        return self.directory / f"{stream}.jsonl"

    def open(self, streams: Sequence[StreamInfo]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Opened up front so that `write` only reads this dict from the callback threads.
        self._files = {s.name: self.path_for(s.name).open("w", encoding="utf-8") for s in streams}

    def write(self, result: Result) -> None:
        self._files[result.stream].write(json.dumps(result.to_dict()) + "\n")

    def close(self) -> None:
        for file in self._files.values():
            file.close()
