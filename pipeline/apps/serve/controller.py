"""What the HTTP API asks of the service: the `StreamController` protocol and its errors."""

from __future__ import annotations

from typing import Protocol

from pipeline.apps.serve.config import CameraConfig
from pipeline.errors import VapipeError


class StreamNotFound(VapipeError):
    """No running camera has that name."""


class StreamExists(VapipeError):
    """A camera of that name is already running."""


class StreamController(Protocol):
    """Starts, stops and describes the service's cameras.

    Views are JSON-ready dicts (credentials masked): name, source, state, fps, latency p95,
    processed, dropped, reconnects, counts ... Changes are applied at once and, unless the
    config is read-only, written back to the config file. Every method may be called from any
    HTTP thread at the same time.
    """

    def list_streams(self) -> list[dict]: ...

    def service_classes(self) -> dict[str, dict]:
        """Per service class (`live`, `batch`) with streams: streams running, frames, dropped,
        fps now, latency p50/p95."""
        ...

    def get_stream(self, name: str) -> dict:
        """Raises StreamNotFound."""
        ...

    def add_stream(self, camera: CameraConfig) -> dict:
        """Start a new camera; its view. Raises StreamExists."""
        ...

    def replace_stream(self, camera: CameraConfig) -> dict:
        """Restart that camera alone with new settings; its view. Raises StreamNotFound."""
        ...

    def remove_stream(self, name: str) -> dict:
        """Stop a camera cleanly (outputs finished and renamed); its final summary."""
        ...

    def snapshot(self, name: str) -> bytes | None:
        """The latest annotated frame as JPEG, None before the first. Raises StreamNotFound."""
        ...

    def reload(self) -> dict:
        """Reread the config file and apply the difference; what changed. Raises ConfigError."""
        ...

    def health(self) -> dict:
        """`{"ok": bool, ...}`: whether the pipeline runs."""
        ...
