"""`vapipe run --record DIR`: each stream's camera recorded (stream copy) beside the analysis."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import check_writable_folder
from pipeline.errors import VapipeError

if TYPE_CHECKING:  # imported when recording: `vapipe --help` loads neither OpenCV nor NumPy
    from pipeline.recording.retention import Retention, Tier
    from pipeline.recording.timeline import RecordingClock

log = logging.getLogger(__name__)

# option prefix (--record-max-days, ...) -> its retention tier (named as `vapipe serve`'s
# [recording] keys), the pattern of the tier's files under the option's folder, what they are
RETAINED = {
    "record": ("continuous", "**/*", "recorded segments"),
    "clips": ("clips", "*/*", "event clips"),  # not DIR/<stream>.clips.jsonl
    "snapshots": ("snapshots", "*/*", "snapshots"),
}


def add_recording_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recording")
    group.add_argument(
        "--record", type=Path, metavar="DIR",
        help="also record every stream, its packets copied as they are (no re-encoding), into "
        "DIR/<stream>/<UTC start>.mp4 segments (fragmented MP4); needs PyAV",
    )  # fmt: skip
    group.add_argument(
        "--record-source", action="append", default=[], metavar="NAME=URL",
        help="record stream NAME from URL instead (e.g. the camera's main stream while the "
        "sub-stream is analysed); repeatable",
    )  # fmt: skip
    group.add_argument(
        "--segment-seconds", type=float, default=60.0, metavar="S",
        help="recorded segments' length: cut at the first keyframe after S seconds (default 60)",
    )  # fmt: skip
    group.add_argument(
        "--clips", type=Path, metavar="DIR",
        help="with --record and tracking: a clip per event (overlapping events share one) into "
        "DIR/<stream>/, listed in DIR/<stream>.clips.jsonl",
    )  # fmt: skip
    group.add_argument(
        "--clip-seconds", type=float, nargs=2, default=(5.0, 5.0), metavar=("PRE", "POST"),
        help="seconds of video kept before and after each event (default 5 5)",
    )  # fmt: skip
    group.add_argument(
        "--snapshots", type=Path, metavar="DIR",
        help="with tracking: per track, when it ends, a JPEG of its best frame (highest score) "
        "with its box drawn and a crop of the box, into DIR/<stream>/; paths in its track_end",
    )  # fmt: skip
    for option, (_, _, files) in RETAINED.items():
        group.add_argument(
            f"--{option}-max-days", type=float, metavar="D",
            help=f"remove {files} older than D days, oldest first, while the run goes on",
        )  # fmt: skip
        group.add_argument(
            f"--{option}-max-gb", type=float, metavar="G",
            help=f"keep at most G GB of {files}, removing the oldest first",
        )  # fmt: skip


def record_urls(
    record_sources: Sequence[str], names: Sequence[str], urls: Sequence[str]
) -> dict[str, str]:
    """Stream name -> the URL to record it from: its own, or the one `--record-source` gives."""
    chosen = dict(zip(names, urls, strict=True))
    for spec in record_sources:
        name, _, url = spec.partition("=")
        if name not in chosen:
            known = ", ".join(names)
            raise VapipeError(f"--record-source {spec}: no stream named {name} (streams: {known})")
        chosen[name] = url
    return chosen


def check_recording_options(args: argparse.Namespace) -> None:
    """The recording options' errors, before any work starts."""
    for option in RETAINED:
        for limit in ("days", "gb"):
            value = getattr(args, f"{option}_max_{limit}")
            if value is None:
                continue
            if not value > 0:
                raise VapipeError(f"--{option}-max-{limit} {value:g}: must be above 0")
            if getattr(args, option) is None:
                raise VapipeError(f"--{option}-max-{limit} needs --{option} DIR")
    if args.snapshots is not None:
        check_writable_folder(args.snapshots, "--snapshots")
    if args.record is None:
        if args.record_source or args.clips:
            option = "--clips" if args.clips else "--record-source"
            raise VapipeError(f"{option} needs --record DIR to write the recordings to")
        return
    if args.clips is not None:
        if min(args.clip_seconds) < 0:
            raise VapipeError("--clip-seconds PRE POST: must be 0 or more")
        check_writable_folder(args.clips, "--clips")
    from sources.pyav_capture import import_av

    import_av()  # a one-line error if PyAV is missing
    if not args.segment_seconds > 0:
        raise VapipeError(f"--segment-seconds {args.segment_seconds:g}: must be above 0")
    for spec in args.record_source:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise VapipeError(f"--record-source {spec}: expected NAME=URL")
    check_writable_folder(args.record, "--record")


@dataclass
class Recording:
    """The streams to analyse (`sources`) and the recorders beside them, `start`ed once the
    pipeline is built (a bad model records nothing)."""

    sources: list
    recorders: list = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)
    _retention: Retention | None = None
    _started: bool = False

    def start(self) -> None:
        self._started = True
        for recorder in self.recorders:
            recorder.start()
        if self.tiers:
            from pipeline.recording.retention import Retention

            self._retention = Retention(self.tiers).start()

    def clock(self, stream: str) -> RecordingClock:
        """Where `stream`'s events lie on its recording (a recorded file has a timeline of its
        own)."""
        from pipeline.recording.timeline import clock_of

        return clock_of(next((r for r in self.recorders if r.name == stream), None))

    def stop(self) -> None:
        if not self._started:
            return
        for recorder in self.recorders:
            recorder.stop()
            log.info(
                "%s: %d segments recorded, %d connection(s) to the camera",
                recorder.name, recorder.segments_written, recorder.connections,
            )  # fmt: skip
        if self._retention is not None:  # a last pass: the limits hold when the run ends
            self._retention.stop()
            self._retention.run_once()
            log_retention(self._retention.metrics())


def log_retention(metrics: dict[str, dict]) -> None:
    """What retention removed, per tier and reason (`age`, `size`), and its disk warnings."""
    removed = metrics["removed_files"]
    if removed:
        sizes = metrics["removed_bytes"]
        each = ", ".join(f"{n} {key} ({sizes[key] / 1e6:.1f} MB)" for key, n in removed.items())
        log.info("retention removed %s", each)
    for tier, warnings in metrics["low_disk_warnings"].items():
        log.warning("retention %s: %d low-disk warnings", tier, warnings)


def retention_tiers(args: argparse.Namespace) -> list[Tier]:
    """A tier per option prefix with a limit set (`--clips-max-gb`, ...)."""
    from pipeline.recording.retention import Tier

    tiers = []
    for option, (name, pattern, _) in RETAINED.items():
        days, gb = getattr(args, f"{option}_max_days"), getattr(args, f"{option}_max_gb")
        if days is not None or gb is not None:
            size = None if gb is None else int(gb * 1e9)
            tiers.append(Tier(name, getattr(args, option), days, size, pattern=pattern))
    return tiers


@contextlib.contextmanager
def recording(args: argparse.Namespace, sources: list) -> Iterator[Recording]:
    """The recording of `sources`' streams (`--record`) and the retention of what the run
    writes, stopped when the block ends. A camera recorded from the URL it is analysed from is
    decoded from its recorder's packets (one connection to the camera, demuxed once); every
    other source is analysed as it is."""
    run = Recording(sources, tiers=retention_tiers(args))
    if args.record is not None:
        run.sources, run.recorders = _recorded(args, sources)
    try:
        yield run
    finally:
        run.stop()


def _recorded(args: argparse.Namespace, sources: list) -> tuple[list, list]:
    """The sources to analyse and a recorder per source (`--record`)."""
    from pipeline.recording import CameraRecorder, RecordOptions
    from pipeline.recording.shared_connection import (
        decoded_from,
        record_options_for,
        shares_connection,
    )

    names = [source.name for source in sources]
    urls = record_urls(args.record_source, names, [source.uri for source in sources])
    options = RecordOptions(
        segment_seconds=args.segment_seconds,
        rtsp_transport=getattr(args, "rtsp_transport", "tcp"),
    )
    analysed, recorders = [], []
    for source in sources:
        url = urls[source.name]
        shared = shares_connection(source, url)
        recorder = CameraRecorder(
            source.name, url, args.record / source.name,
            record_options_for(source, options) if shared else options,
        )  # fmt: skip
        recorders.append(recorder)
        analysed.append(decoded_from(recorder, source) if shared else source)
    return analysed, recorders


def check_evidence_options(args: argparse.Namespace, tracking: bool) -> None:
    """`--clips` and `--snapshots` need tracking events, and frames on this machine."""
    clips, snapshots = getattr(args, "clips", None), getattr(args, "snapshots", None)
    if clips is None and snapshots is None:
        return
    option = "--clips" if clips is not None else "--snapshots"
    if not tracking:
        raise VapipeError(f"{option} needs tracking events: add --track, --line or --zone")
    if getattr(args, "ray", None):
        raise VapipeError(f"{option} is not available with --ray (frames stay on the nodes)")


def evidence_sinks(
    args: argparse.Namespace, sinks: list, clock: Callable[[str], RecordingClock]
) -> list:
    """`sinks` after the evidence sink, which gives each event its clip (`--clips`) and each
    `track_end` its snapshots (`--snapshots`) before the events file gets them; paths
    relative to `--out` (or to the current folder without it). `clock(stream)`: where the
    stream's events lie on its recording."""
    clips, snapshots = getattr(args, "clips", None), getattr(args, "snapshots", None)
    if clips is None and snapshots is None:
        return sinks
    from pipeline.recording.clips import ClipOptions
    from pipeline.recording.evidence import EvidencePlan, EvidenceSink

    pre, post = args.clip_seconds
    base = Path(args.out) if args.out else Path.cwd()

    def plan(stream: str) -> EvidencePlan:
        return EvidencePlan(
            base=base,
            recording=None if clips is None else args.record / stream,
            clips=None if clips is None else clips / stream,
            snapshots=None if snapshots is None else snapshots / stream,
            clip_options=ClipOptions(pre=pre, post=post),
            clip_index=None if clips is None else clips / f"{stream}.clips.jsonl",
            clock=clock(stream),
        )

    return [EvidenceSink(plan), *sinks]  # first: it copies pictures before others draw
