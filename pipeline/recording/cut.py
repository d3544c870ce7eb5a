"""A stretch of a camera's recording cut into one MP4, by stream copy: what an event clip and an
export are. It starts at the last keyframe at or before the wanted start (so it holds at least
the time asked for before it) and ends with the first packet at or after the wanted end."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import VapipeError
from pipeline.recording.segments import PARTIAL, SUFFIX, segment_start
from sources.pyav_capture import import_av

log = logging.getLogger(__name__)
# Segment names keep microseconds: a packet this close to a limit counts as at it.
_SLACK = 1e-4


def recorded_files(folder: Path) -> list[Path]:
    """A camera's segments, finished and the one being written (readable up to its last
    fragment), oldest first."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.name.endswith((SUFFIX, PARTIAL))]
    return sorted(files, key=segment_start)


def _packets(files: list[Path]) -> Iterator[tuple[float, object, object]]:
    """(wall time, packet, its stream) of every packet of `files`, in order."""
    av = import_av()
    for path in files:
        seg_start = segment_start(path)
        with av.open(str(path)) as source:
            video = source.streams.video[0]
            try:
                for packet in source.demux(video):
                    if packet.dts is not None and packet.pts is not None and packet.size:
                        yield seg_start + float(packet.dts * video.time_base), packet, video
            except av.FFmpegError as error:  # a segment still being written ends mid-way
                log.debug("%s: read up to %s", path.name, error)


def cut(folder: Path, start: float, end: float, out: Path) -> Path:
    """Write `out` (MP4, moov first for browsers) holding the camera's video from the keyframe
    at or before wall time `start` up to `end` (Unix seconds), written under a temporary name
    and renamed. VapipeError if nothing recorded overlaps that time."""
    if not end > start:
        raise VapipeError(f"the end ({end}) must come after the start ({start})")
    av = import_av()
    files = recorded_files(folder)
    # from the last segment starting at or before `start` (it holds the keyframe)
    first = max((i for i, p in enumerate(files) if segment_start(p) <= start), default=0)
    chosen = [p for p in files[first:] if segment_start(p) < end]
    partial = out.with_name(out.name + ".part")
    pending: list = []  # the packets since the last keyframe, before `start`
    output = stream = None
    base = 0.0
    last_dts = None
    written = 0
    try:
        for wall, packet, video in _packets(chosen):
            if wall >= end - _SLACK:
                break
            if packet.is_keyframe and wall <= start + _SLACK:
                pending = []
            if output is None:
                pending.append((wall, packet))
                if wall < start - _SLACK or not pending[0][1].is_keyframe:
                    if not pending[0][1].is_keyframe:
                        pending = []
                    continue
                output = av.open(str(partial), "w", format="mp4",
                                 options={"movflags": "faststart"})  # fmt: skip
                stream = output.add_stream_from_template(video)
                base = pending[0][0]
            else:
                pending.append((wall, packet))
            for when, p in pending:
                tb = p.time_base
                dts = round((when - base) / tb)
                if last_dts is not None and dts <= last_dts:
                    continue  # the same time in two segments
                pts = dts + (p.pts - p.dts)
                last_dts = dts
                p.dts, p.pts, p.stream = dts, pts, stream
                output.mux(p)
                written += 1
            pending = []
    finally:
        if output is not None:
            output.close()
    if written == 0:
        partial.unlink(missing_ok=True)
        raise VapipeError(f"{folder.name}: nothing recorded between {start:.3f} and {end:.3f}")
    os.replace(partial, out)
    return out
