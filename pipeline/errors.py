"""Error hierarchy: every user-facing failure is a VapipeError with a one-line message."""

from __future__ import annotations

from sources.errors import SourceError, VapipeError

__all__ = ["AdapterError", "DeviceError", "ModelError", "SourceError", "VapipeError"]


class ModelError(VapipeError):
    """A model path is missing, unreadable or not a model."""


class AdapterError(VapipeError):
    """A postprocessing adapter does not fit the model."""


class DeviceError(VapipeError):
    """A device string names no device that exists here."""
