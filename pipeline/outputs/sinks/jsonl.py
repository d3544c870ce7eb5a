"""JSON Lines files, one per stream: `DIR/<stream>.jsonl`, one line per frame."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO

from pipeline.atomic import output_error, publish
from pipeline.detections import Result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamOutcome, StreamSummary

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
    (a batch job mirrors the input tree): folders are made as needed. A write that fails (a
    full disk) raises OutputError naming the file; the stream's file is then closed and keeps
    its `.part` name, and the sink writes nothing more for that stream.
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
        try:
            self._files[stream.name] = partial.open("w", encoding="utf-8")
        except OSError as error:
            raise output_error(partial, error) from None

    def write(self, result: Result) -> None:
        file = self._files.get(result.stream)
        if file is None:  # an earlier write failed
            return
        try:
            file.write(json.dumps(result.to_dict()) + "\n")
        except OSError as error:
            self._abandon(result.stream)
            raise output_error(file.name, error) from None

    def finish(self, stream: StreamSummary) -> None:
        file = self._files.get(stream.name)
        if file is None:  # the stream failed before it opened, or a write failed
            return
        try:
            file.flush()
            os.fsync(file.fileno())
            file.close()
        except OSError as error:
            self._abandon(stream.name)
            raise output_error(file.name, error) from None
        del self._files[stream.name]
        if stream.status == StreamOutcome.DONE or self.keep_incomplete:
            publish(Path(file.name), self.path_for(stream.name))

    def _abandon(self, stream: str) -> None:
        """Close a stream's file after a failed write; what it holds stays under `.part`."""
        file = self._files.pop(stream)
        with contextlib.suppress(OSError):
            file.close()

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
