"""Retention: each tier of files (continuous segments, event clips, snapshots) kept for at most
some days and some total size, the oldest going first, on a thread of its own while recording
goes on. Files still being written (`.part`) are never touched."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_UNFINISHED = (".part", ".repair", ".tmp")


@dataclass(frozen=True)
class Tier:
    """Files under `root` matching `pattern` (default: any, at any depth), kept `max_days` at
    most and `max_bytes` in all (None: no limit). E.g. `*/clips/*`: every camera's clips."""

    name: str
    root: Path
    max_days: float | None = None
    max_bytes: int | None = None
    pattern: str = "**/*"

    def __post_init__(self) -> None:
        for key in ("max_days", "max_bytes"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"retention {self.name}.{key}: must be above 0, not {value}")


@dataclass(frozen=True, slots=True)
class Removed:
    """A file retention removed, and why: `age` or `size`."""

    tier: str
    path: Path
    size: int
    reason: str


def _files(root: Path, pattern: str = "**/*") -> list[tuple[float, int, Path]]:
    """(modified time, size, path) of the finished files under `root`, oldest first."""
    found = []
    if root.is_dir():
        for path in root.glob(pattern):
            if path.name.endswith(_UNFINISHED):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # renamed or removed meanwhile
                continue
            if path.is_file():
                found.append((stat.st_mtime, stat.st_size, path))
    return sorted(found)


def prune(tier: Tier, now: float) -> list[Removed]:
    """Remove `tier`'s files older than its days, then the oldest until it fits its size;
    the size never takes the newest file of a folder (a camera's last segment, clip or
    snapshot stays even when it alone is above the limit)."""
    files = _files(tier.root, tier.pattern)
    removed = []
    if tier.max_days is not None:
        cutoff = now - tier.max_days * 86400
        while files and files[0][0] < cutoff:
            _, size, path = files.pop(0)
            path.unlink(missing_ok=True)
            removed.append(Removed(tier.name, path, size, "age"))
    if tier.max_bytes is not None:
        total = sum(size for _, size, _ in files)
        newest = {path.parent: path for _, _, path in files}  # oldest first: the last wins
        for _, size, path in files:
            if total <= tier.max_bytes:
                break
            if newest[path.parent] == path:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed.append(Removed(tier.name, path, size, "size"))
    for item in removed:
        log.debug("retention %s: removed %s (%s)", item.tier, item.path.name, item.reason)
    return removed


class Retention:
    """Prunes `tiers` every `interval` seconds until `stop`. Counts the bytes and files removed
    per (tier, reason) for metrics, and warns (counted too) when the disk holding a tier has
    less than `min_free_bytes` left: then the newest files may not fit, and someone must know."""

    def __init__(
        self,
        tiers: list[Tier],
        interval: float = 60.0,
        min_free_bytes: int = 1 << 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tiers = tiers
        self.interval = interval
        self.min_free_bytes = min_free_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._removed_bytes: Counter[tuple[str, str]] = Counter()
        self._removed_files: Counter[tuple[str, str]] = Counter()
        self._low_disk: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[Removed]:
        removed = []
        for tier in self.tiers:
            removed += prune(tier, self._clock())
            if tier.root.is_dir() and shutil.disk_usage(tier.root).free < self.min_free_bytes:
                log.warning("retention %s: the disk holding %s is nearly full; the newest "
                            "recordings may be lost: free space or lower the limits",
                            tier.name, tier.root)  # fmt: skip
                with self._lock:
                    self._low_disk[tier.name] += 1
        with self._lock:
            for item in removed:
                self._removed_bytes[(item.tier, item.reason)] += item.size
                self._removed_files[(item.tier, item.reason)] += 1
        return removed

    def metrics(self) -> dict[str, dict]:
        """Bytes and files removed per `tier/reason`, low-disk warnings per tier."""
        with self._lock:
            return {
                "removed_bytes": {f"{t}/{r}": n for (t, r), n in self._removed_bytes.items()},
                "removed_files": {f"{t}/{r}": n for (t, r), n in self._removed_files.items()},
                "low_disk_warnings": dict(self._low_disk),
            }

    def start(self) -> Retention:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except OSError as error:
                log.warning("retention: %s", error)
            self._stop.wait(self.interval)
