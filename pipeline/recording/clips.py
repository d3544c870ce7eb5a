"""Event clips: for each event of a camera, its recording from `pre` seconds before to `post`
seconds after, cut by stream copy once the recording has reached that end. Events of one camera
whose windows overlap share one clip (a review item), unless `merge` is off.

A clip's path is known when its first event arrives (`<camera>-<event type>-<UTC time>.mp4`),
so the event can carry it at once; the file appears under that name when complete (written
under a temporary name, then renamed)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import VapipeError
from pipeline.recording.cut import cut

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipOptions:
    """`pre`/`post` seconds around each event (the clip starts at the keyframe at or before
    event - `pre`); `merge` overlapping events into one clip; `settle` seconds to wait after
    a clip's end for its packets to reach the recording."""

    pre: float = 5.0
    post: float = 5.0
    merge: bool = True
    settle: float = 2.0

    def __post_init__(self) -> None:
        if self.pre < 0 or self.post < 0:
            raise ValueError(f"clip pre and post must be >= 0, not {self.pre}, {self.post}")


@dataclass
class _Item:
    path: Path
    start: float
    end: float
    events: list[str] = field(default_factory=list)


def clip_name(camera: str, event_type: str, when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{camera}-{event_type}-{stamp}.mp4"


class EventClips:
    """Cuts clips of `camera`'s recording under `recording` into `out`, on a thread of its own.
    `add(event_type, start, end)` (times on the recording, as `clock` gives its progress)
    returns the clip's path; `on_failure()` is called (on that thread) for each clip that
    could not be written."""

    def __init__(
        self,
        camera: str,
        recording: Path,
        out: Path,
        options: ClipOptions | None = None,
        clock: Callable[[], float] = time.time,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.camera = camera
        self._on_failure = on_failure
        self.recording = recording
        self.out = out
        self.options = options or ClipOptions()
        self._clock = clock
        self._items: list[_Item] = []  # waiting for their end, in order
        self._cond = threading.Condition()
        self._stopping = False
        self.written: list[Path] = []
        self.failed: list[tuple[Path, str]] = []
        self._thread = threading.Thread(target=self._run, name=f"clips-{camera}", daemon=True)

    def start(self) -> EventClips:
        self.out.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def add(self, event_type: str, start: float, end: float | None = None) -> Path:
        """The clip holding an event from `start` to `end` (default: `start`)."""
        end = start if end is None else end
        first, last = start - self.options.pre, end + self.options.post
        with self._cond:
            last_item = self._items[-1] if self._items else None
            if self.options.merge and last_item is not None and first <= last_item.end:
                last_item.start = min(last_item.start, first)  # a track's life reaches back
                last_item.end = max(last_item.end, last)
                last_item.events.append(event_type)
                return last_item.path
            item = _Item(self.out / clip_name(self.camera, event_type, start), first, last)
            item.events.append(event_type)
            self._items.append(item)
            self._cond.notify_all()
            return item.path

    def stop(self) -> None:
        """Cut every clip still waiting (with what is recorded so far) and end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._items:
                        due = self._items[0].end + self.options.settle - self._clock()
                        if due <= 0 or self._stopping:
                            item = self._items.pop(0)
                            break
                        self._cond.wait(min(due, 1.0))
                    elif self._stopping:
                        return
                    else:
                        self._cond.wait()
            try:
                self.written.append(cut(self.recording, item.start, item.end, item.path))
                log.info("%s: clip %s (%s)", self.camera, item.path.name, ", ".join(item.events))
            except (VapipeError, OSError) as error:
                log.warning("%s: clip %s not written: %s", self.camera, item.path.name, error)
                self.failed.append((item.path, str(error)))
                if self._on_failure is not None:
                    self._on_failure()
