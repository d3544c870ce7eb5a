"""Segments on disk: fragmented MP4 files named after the wall time of their first packet.

A segment is written as `<start>.mp4.part` and renamed to `<start>.mp4` once closed, so a file
under its final name is always complete. Fragmented MP4 (an empty `moov`, then one `moof` +
`mdat` per keyframe) is playable up to its last whole fragment even when the process dies in
the middle of one; `repair_unfinished` turns such a `.part` left by a crash into a finished
segment on the next start (stream copy of its whole fragments).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

from sources.pyav_capture import import_av

log = logging.getLogger(__name__)

SUFFIX = ".mp4"
PARTIAL = ".mp4.part"
# A fragment at each keyframe and at least every second (a crash loses at most that); the moov
# first and empty: nothing written at the end is needed to play the file.
FRAGMENTED = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": "1000000",
    "flush_packets": "1",  # each fragment reaches the file as it is made, not at close
}
_REPAIRING = ".mp4.repair"
_STAMP = "%Y%m%dT%H%M%S.%fZ"


def segment_name(start: float) -> str:
    """The file stem of a segment starting at `start` (Unix seconds, UTC)."""
    return datetime.fromtimestamp(start, UTC).strftime(_STAMP)


def segment_start(path: Path) -> float:
    """The wall time (Unix seconds) a segment's name says it starts at."""
    stem = path.name.removesuffix(PARTIAL).removesuffix(SUFFIX)
    return datetime.strptime(stem, _STAMP).replace(tzinfo=UTC).timestamp()


def list_segments(folder: Path) -> list[Path]:
    """A camera's finished segments, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX))


class SegmentWriter:
    """One segment being written: packets of one video stream, copied as they are, with their
    timestamps moved so that the segment starts at 0."""

    def __init__(self, folder: Path, start: float, template, partial: str = PARTIAL) -> None:
        av = import_av()
        folder.mkdir(parents=True, exist_ok=True)
        self.start = start
        self.final = folder / (segment_name(start) + SUFFIX)
        self.partial = folder / (segment_name(start) + partial)
        self.packets = 0
        self._first_dts: int | None = None
        self._time_base: Fraction = template.time_base
        self._last_dts: int | None = None
        self._end: int = 0
        self._container = av.open(str(self.partial), "w", format="mp4", options=FRAGMENTED)
        self._stream = self._container.add_stream_from_template(template)

    @property
    def duration(self) -> float:
        """Seconds of video written so far (to the end of the last packet)."""
        return float(self._end * self._time_base)

    def write(self, packet) -> None:
        """Copy `packet` (of the template's stream) into the segment."""
        dts = packet.dts if packet.dts is not None else packet.pts
        if self._first_dts is None:
            self._first_dts = dts
        dts -= self._first_dts
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # the muxer needs strictly rising times
        pts = dts if packet.pts is None else max(dts, packet.pts - self._first_dts)
        self._last_dts = dts
        packet.dts, packet.pts = dts, pts
        self._end = max(self._end, pts + (packet.duration or 0))
        packet.stream = self._stream
        self._container.mux(packet)
        self.packets += 1

    @property
    def first_dts(self) -> int:
        """The stream time of the first packet written, as it arrived (before moving to 0)."""
        return self._first_dts or 0

    def close(self, start: float | None = None) -> Path | None:
        """Finish the file and give it its final name, after `start` if given (a better
        estimate of its start than when it opened); None, file removed, if it is empty."""
        self._container.close()
        if self.packets == 0:
            self.partial.unlink(missing_ok=True)
            return None
        if start is not None:
            self.start = start
            self.final = self.final.with_name(segment_name(start) + SUFFIX)
        os.replace(self.partial, self.final)
        return self.final


def repair_unfinished(folder: Path) -> list[Path]:
    """Turn every `.part` a crash left in `folder` into a finished segment holding its whole
    fragments (a stream copy); a `.part` with nothing readable is removed. Returns the
    segments made."""
    av = import_av()
    repaired = []
    if not folder.is_dir():
        return repaired
    for stale in folder.glob("*" + _REPAIRING):
        stale.unlink()  # a repair cut short: its `.part` is still there
    for partial in sorted(folder.glob("*" + PARTIAL)):
        start = segment_start(partial)
        try:
            source = av.open(str(partial))
        except (av.FFmpegError, OSError) as error:
            log.warning("%s: unreadable, removed: %s", partial, error)
            partial.unlink()
            continue
        writer = None
        try:
            stream = source.streams.video[0]
            writer = SegmentWriter(folder, start, stream, partial=_REPAIRING)
            try:
                for packet in source.demux(stream):
                    if packet.size:
                        writer.write(packet)
            except av.FFmpegError as error:
                log.info("%s: kept up to a cut-short fragment: %s", partial, error)
        finally:
            source.close()
        made = writer.close() if writer is not None else None
        partial.unlink(missing_ok=True)
        if made is not None:
            log.warning("%s: left unfinished by a crash, repaired as %s", partial, made.name)
            repaired.append(made)
    return repaired
