"""The recordings part of the service API as plain functions, free of any HTTP framework:
`GET /api/recordings?camera=&start=&end=` (an MP4 cut by stream copy) and HTTP Range for
serving clip files. The web layer maps `RecordingError` to its status and sends the bytes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import VapipeError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CAMERA = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_CUT_SECONDS = 3600.0


class RecordingError(VapipeError):
    """A request the recordings API refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start`..`end` (inclusive) of a file of `size` bytes: a 206 reply's body."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def byte_range(header: str | None, size: int) -> ByteRange | None:
    """The range a `Range` header asks of a file of `size` bytes; None for the whole file
    (no header). RecordingError 416 for a range outside the file or one not understood."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RecordingError(416, f"Range {header!r}: expected bytes=START-END (one range)")
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
    if start >= size or end < start:
        raise RecordingError(416, f"Range {header!r}: outside the file's {size} bytes")
    return ByteRange(start, end, size)


def read_range(path: Path, wanted: ByteRange) -> bytes:
    """The bytes of `wanted` from `path`."""
    with path.open("rb") as file:
        file.seek(wanted.start)
        return file.read(wanted.length)


def _time(query: Mapping[str, str], key: str) -> float:
    text = query.get(key)
    if not text:
        raise RecordingError(400, f"{key}: missing (Unix seconds or ISO 8601 with a zone)")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordingError(400, f"{key}={text}: not Unix seconds or ISO 8601") from None
    if when.tzinfo is None:
        raise RecordingError(400, f"{key}={text}: say the time zone (e.g. Z for UTC)")
    return when.timestamp()


def recording_cut(root: Path, query: Mapping[str, str], cache: Path, subfolder: str = "") -> Path:
    """The MP4 `GET /api/recordings?camera=&start=&end=` answers with: the camera's recording
    under `root/<camera>/<subfolder>` from the keyframe at or before `start` to `end`, cut
    into `cache` (stream copy). RecordingError 400 for a bad query, 404 when nothing was
    recorded then. `vapipe serve` records into `[output] dir/<camera>/recordings`: call it
    with `root` = the output dir and `subfolder="recordings"`."""
    from pipeline.recording import cut

    camera = query.get("camera", "")
    if not _CAMERA.match(camera):
        raise RecordingError(400, f"camera={camera!r}: expected a camera name")
    start, end = _time(query, "start"), _time(query, "end")
    if not end > start:
        raise RecordingError(400, "end must come after start")
    if end - start > MAX_CUT_SECONDS:
        raise RecordingError(400, f"at most {MAX_CUT_SECONDS:g} s at once; ask in parts")
    folder = root / camera / subfolder if subfolder else root / camera
    if not folder.is_dir():
        raise RecordingError(404, f"camera {camera}: no recordings")
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{camera}-{start:.3f}-{end:.3f}.mp4"
    try:
        return cut(folder, start, end, out)
    except VapipeError as error:
        raise RecordingError(404, str(error)) from None
