"""Finding the videos of a batch job, naming their outputs, and telling which are complete."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.outputs.sinks.events import events_path
from pipeline.outputs.sinks.jsonl import jsonl_path
from pipeline.outputs.sinks.video import video_path
from sources import SourceError, unique_names

VIDEO_SUFFIXES = frozenset(
    {".3gp", ".asf", ".avi", ".flv", ".h264", ".h265", ".hevc", ".m2ts", ".m4v", ".mjpeg",
     ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".ts", ".vob", ".webm", ".wmv"}
)  # fmt: skip


@dataclass(frozen=True)
class BatchFile:
    """A video of the batch: `key` names its outputs, `OUT/<key>.jsonl`, mirroring the input
    tree (`cam1/day2/clip` for `INPUT/cam1/day2/clip.mp4`)."""

    path: Path
    key: str

    @property
    def relative(self) -> str:
        """The input path shown in reports: the key's folders and the file's own name."""
        return str(Path(self.key).parent / self.path.name)


def _matches(path: Path, patterns: Sequence[str]) -> bool:
    if patterns:
        return any(path.match(pattern) for pattern in patterns)
    return path.suffix.lower() in VIDEO_SUFFIXES


def find_videos(
    inputs: Sequence[str | Path], patterns: Sequence[str] = (), exclude: Path | None = None
) -> list[BatchFile]:
    """Video files under each input folder, recursively, in a stable order.

    A file is a video by its extension (case-insensitive) unless `patterns` (globs such as
    `*.mp4` or `cam*/**/*.avi`) say otherwise. An input may also be a single file. With several
    inputs, each one's outputs go under a folder named after it. Files under `exclude` (the
    output folder, which may sit inside an input and holds annotated videos) are left out.
    """
    skip = exclude.resolve() if exclude is not None else None
    roots = [Path(p) for p in inputs]
    for root in roots:
        if not root.exists():
            raise SourceError(f"{root}: no such folder; check the path")
    prefixes = unique_names(root.resolve().name or "input" for root in roots)
    found: list[BatchFile] = []
    for root, prefix in zip(roots, prefixes, strict=True):
        if root.is_file():
            files, base = [root], root.parent
        else:
            files = sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and _matches(p, patterns)
                and not (skip and p.resolve().is_relative_to(skip))
            )
            base = root
        keys = _output_keys([p.relative_to(base) for p in files])
        if len(roots) > 1:
            keys = [f"{prefix}/{key}" for key in keys]
        found += [BatchFile(path, key) for path, key in zip(files, keys, strict=True)]
    return found


def _output_keys(relatives: Sequence[Path]) -> list[str]:
    """`dir/stem` for each file; files that share a folder and a stem keep their suffix (and
    a key that still collides, `a.mp4` beside `a.mp4.mkv`, is numbered)."""
    stems = Counter(path.with_suffix("") for path in relatives)
    return unique_names(
        (path.with_suffix("") if stems[path.with_suffix("")] == 1 else path).as_posix()
        for path in relatives
    )


@dataclass(frozen=True)
class OutputLayout:
    """Where a batch job writes: `OUT/<key>.jsonl`, the annotated video and (with tracking)
    `<key>.events.jsonl` beside it, reports."""

    root: Path
    save_video: bool = False
    events: bool = False

    def jsonl(self, file: BatchFile) -> Path:
        return jsonl_path(self.root, file.key)

    def video(self, file: BatchFile) -> Path:
        return video_path(self.root, file.key, str(file.path))

    def events_jsonl(self, file: BatchFile) -> Path:
        return events_path(self.root, file.key)

    def is_complete(self, file: BatchFile) -> bool:
        """Its outputs exist under their final names (only a finished file is renamed there)
        and are newer than the video (a replaced recording is processed again)."""
        outputs = [self.jsonl(file)] + ([self.video(file)] if self.save_video else [])
        outputs += [self.events_jsonl(file)] if self.events else []
        try:
            source_mtime = file.path.stat().st_mtime
            return all(path.stat().st_mtime >= source_mtime for path in outputs)
        except FileNotFoundError:
            return False
