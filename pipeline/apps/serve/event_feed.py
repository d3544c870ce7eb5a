"""The service's events for HTTP clients: the saved ones (each camera's events.jsonl files under
`[output] dir`) and the live ones, fanned out to Server-Sent Events clients.

Each live client has a bounded queue filled from the pipeline's thread without waiting; a
client that falls `QUEUE_SIZE` events behind is dropped (its stream ends, the browser's
EventSource reconnects), so a slow client never holds up the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections import deque
from pathlib import Path

QUEUE_SIZE = 1000
MAX_EVENTS = 1000
_CAMERA = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FILE = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def with_urls(camera: str, event: dict) -> dict:
    """The event plus `clip_url` and `snapshot_url` (None when it has no such file)."""
    out = dict(event)
    for key, kind in (("clip", "clips"), ("snapshot", "snapshots")):
        name = Path(str(event.get(key) or "")).name
        out[f"{key}_url"] = f"/media/{kind}/{camera}/{name}" if event.get(key) else None
    return out


def saved_events(
    root: Path | None,
    camera: str | None = None,
    kind: str | None = None,
    label: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int = 100,
) -> list[dict]:
    """Events from the events.jsonl files under `root`, filtered, newest first, at most
    `limit`."""
    if root is None or not root.is_dir():
        return []
    folders = [root / camera] if camera else [p for p in root.iterdir() if p.is_dir()]
    found: list[dict] = []
    for folder in folders:
        if not _CAMERA.fullmatch(folder.name) or not folder.is_dir():
            continue
        for path in folder.glob("*.events.jsonl*"):
            with path.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # a line being written
                    if not isinstance(event, dict):
                        continue
                    when = event.get("captured_at")
                    if not isinstance(when, (int, float)):
                        continue
                    if (kind and event.get("type") != kind) or (
                        label and event.get("label") != label
                    ):
                        continue
                    if (start is not None and when < start) or (end is not None and when > end):
                        continue
                    found.append(with_urls(folder.name, event))
    found.sort(key=lambda e: e["captured_at"], reverse=True)
    return found[:limit]


def media_file(root: Path | None, camera: str, kind: str, name: str) -> Path | None:
    """`root/camera/kind/name` if it is a file there (no other path can be named)."""
    if root is None or not _CAMERA.fullmatch(camera) or not _FILE.fullmatch(name):
        return None
    if name.startswith(".") or camera in (".", ".."):
        return None
    path = root / camera / kind / name
    return path if path.is_file() else None


class Subscription:
    """One live client's queue: `offer` from any thread, `get` on the client's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = QUEUE_SIZE) -> None:
        self._loop = loop
        self._size = size
        self._lock = threading.Lock()
        self._queue: deque[dict] = deque()
        self._wake = asyncio.Event()
        self.dropped = False

    def offer(self, event: dict) -> None:
        with self._lock:
            if self.dropped:
                return
            if len(self._queue) >= self._size:
                self.dropped = True
                self._queue.clear()
            else:
                self._queue.append(event)
            if len(self._queue) > 1:
                return  # the client is already woken
        with contextlib.suppress(RuntimeError):  # the server's loop is closed
            self._loop.call_soon_threadsafe(self._wake.set)

    async def get(self, timeout: float) -> list[dict]:
        """The events queued so far (waiting up to `timeout` for one); [] on timeout."""
        self._wake.clear()
        with self._lock:
            if self._queue:
                items = list(self._queue)
                self._queue.clear()
                return items
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            return []
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        return items


class EventHub:
    """Fans each published event out to every live subscription."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()

    def publish(self, camera: str, event: dict) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        if subscriptions:
            record = with_urls(camera, event)
            for subscription in subscriptions:
                subscription.offer(record)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscription:
        subscription = Subscription(loop)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscriptions)
