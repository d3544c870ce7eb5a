"""Error hierarchy: every user-facing failure is a VapipeError with a one-line message."""

from __future__ import annotations

from sources.errors import SourceError, VapipeError

__all__ = [
    "AdapterError", "DeviceError", "ModelError", "OutputError", "SourceError", "VapipeError",
]  # fmt: skip


class ModelError(VapipeError):
    """A model path is missing, unreadable or not a model."""


class AdapterError(VapipeError):
    """A postprocessing adapter does not fit the model."""


class DeviceError(VapipeError):
    """A device string names no device that exists here."""


class OutputError(VapipeError):
    """A result file or folder cannot be written: a full disk, a read-only place, a file."""


def openvino_message(error: Exception, limit: int = 200) -> str:
    """The informative line of an OpenVINO exception, without its source-location lines."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    text = (useful or lines or [type(error).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
