"""JSON Lines files, one per stream: `DIR/<stream>.jsonl`, one line per frame."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from pipeline.detections import Result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamSummary

PARTIAL_SUFFIX = ".part"


def jsonl_path(directory: Path, stream: str) -> Path:
    """Where a stream's complete results are: `DIR/<stream>.jsonl`."""
    return directory / f"{stream}.jsonl"


class JsonlSink:
    """Writes `{"stream", "frame", "pts_ms", "latency_ms", "detections"}` per frame.

    A stream's lines go to `<stream>.jsonl.part` and the file is renamed to `<stream>.jsonl`
    when the stream finishes, so a file under the final name is never cut short by a crash.
    With `keep_incomplete=False` only a stream that reached its end is renamed; a failed or
    stopped one leaves its lines under the `.part` name. A stream name may contain `/`
    (a batch job mirrors the input tree): folders are made as needed.
    """

    def __init__(self, directory: str | Path, *, keep_incomplete: bool = True) -> None:
        self.directory = Path(directory)
        self.keep_incomplete = keep_incomplete
        self._files: dict[str, IO[str]] = {}

    def path_for(self, stream: str) -> Path:
        return jsonl_path(self.directory, stream)

    def open(self, stream: StreamInfo) -> None:
        final = self.path_for(stream.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self._files[stream.name] = partial.open("w", encoding="utf-8")

    def write(self, result: Result) -> None:
        self._files[result.stream].write(json.dumps(result.to_dict()) + "\n")

    def finish(self, stream: StreamSummary) -> None:
        file = self._files.pop(stream.name, None)
        if file is None:  # the stream failed before it opened
            return
        file.flush()
        os.fsync(file.fileno())
        file.close()
        if stream.status == "done" or self.keep_incomplete:
            final = self.path_for(stream.name)
            os.replace(file.name, final)

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
