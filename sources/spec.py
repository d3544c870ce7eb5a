"""Turning command-line source specs (`PATH` or `NAME=PATH`) into named sources."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from sources.base import VideoSource
from sources.decoders import OPENCV, DecoderOptions
from sources.errors import SourceError
from sources.file import FileSource
from sources.live import LiveOptions, LiveSource, is_live_uri

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def split_spec(spec: str) -> tuple[str | None, str]:
    """Split `NAME=URI` into (NAME, URI); a plain URI gives (None, URI)."""
    name, sep, uri = spec.partition("=")
    if sep and _NAME.match(name) and not Path(spec).exists():
        return name, uri
    return None, spec


class UniqueNames:
    """Hands out names not in use: `cam`, `cam`, `cam` become `cam`, `cam-2`,
    `cam-3`; a name taken as it was wanted (`cam-2`) is skipped by the numbering. The one
    de-duplicator for stream names and output names."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self._taken:
            n += 1
            name = f"{wanted}-{n}"
        self._taken.add(name)
        return name

    def release(self, name: str) -> None:
        """`name` may be handed out again (its stream has ended: a later batch job over the
        same files gets the same output names, so it resumes)."""
        self._taken.discard(name)

    def take(self, name: str) -> str:
        """Hand out `name` as it is, whether or not it was handed out before (a stream that
        comes back under its name once the earlier one has ended)."""
        self._taken.add(name)
        return name


def unique_names(wanted: Iterable[str]) -> list[str]:
    """Make names unique in order: `cam`, `cam`, `cam` become `cam`, `cam-2`, `cam-3`."""
    names = UniqueNames()
    return [names.claim(name) for name in wanted]


def source_from_spec(
    uri: str,
    name: str | None = None,
    live: LiveOptions | None = None,
    decoder: DecoderOptions = OPENCV,
) -> VideoSource:
    """The source kind for a URI: a live source for rtsp(s)://, http(s):// and capture
    devices (`0`, `/dev/video0`), connected with `live` options; a file otherwise; both
    decoded as `decoder` says (devices by OpenCV)."""
    if not uri:
        raise SourceError(f"empty source {name or ''}=: give a path or URL after '='")
    if is_live_uri(uri) and not Path(uri).is_file():
        return LiveSource(uri, name, live, decoder)
    return FileSource(uri, name, decoder)


def as_source(
    spec: str | os.PathLike | VideoSource,
    live: LiveOptions | None = None,
    decoder: DecoderOptions = OPENCV,
) -> VideoSource:
    """The source for one `URI` / `NAME=URI` spec, path or ready source."""
    if isinstance(spec, str):
        name, uri = split_spec(spec)
        return source_from_spec(uri, name, live, decoder)
    if isinstance(spec, os.PathLike):
        return source_from_spec(os.fspath(spec), live=live, decoder=decoder)
    return spec


def sources_from_specs(
    specs: Iterable[str | os.PathLike | VideoSource],
    live: LiveOptions | None = None,
    decoder: DecoderOptions = OPENCV,
) -> list[VideoSource]:
    """Sources for `URI` / `NAME=URI` specs, paths or ready sources, with unique names."""
    sources = [as_source(spec, live, decoder) for spec in specs]
    for source, name in zip(sources, unique_names(s.name for s in sources), strict=True):
        source.name = name
    return sources
