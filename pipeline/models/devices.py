"""Device strings: check them against the devices present, and pick the performance hint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import DeviceError

log = logging.getLogger(__name__)

VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")


@dataclass(frozen=True)
class DevicePlan:
    """What to compile for: the device string to use, its hint, and what was left out."""

    requested: str
    device: str
    hint: str
    absent: tuple[str, ...] = ()


def _present(name: str, available: Sequence[str]) -> bool:
    base = name.split("(")[0]  # BATCH:GPU(4)
    return any(a == base or a.split(".")[0] == base for a in available)


def plan_device(requested: str, available: Sequence[str]) -> DevicePlan:
    """Check `requested` against `available`; drop absent members of a device list.

    Raises DeviceError, listing the devices that exist, when nothing requested is present.
    """
    text = requested.strip().upper()
    have = ", ".join(available) or "none"
    if not text:
        raise DeviceError(f"empty device string; devices here: {have}")
    prefix, sep, members = text.partition(":")
    if prefix in VIRTUAL_DEVICES:
        if not sep or not members:
            return DevicePlan(requested, prefix, "THROUGHPUT")
        names = [m.strip() for m in members.split(",") if m.strip()]
        wanted = [m for m in names if not m.startswith("-")]  # AUTO:-CPU excludes a device
        present = [m for m in wanted if _present(m, available)]
        absent = tuple(m for m in wanted if m not in present)
        if wanted and not present:
            raise DeviceError(
                f"device {requested}: none of {', '.join(wanted)} exists here; devices here: {have}"
            )
        kept = [m for m in names if m not in absent]
        several = len(present) > 1 and prefix in ("AUTO", "MULTI")
        return DevicePlan(
            requested,
            f"{prefix}:{','.join(kept)}",
            "CUMULATIVE_THROUGHPUT" if several else "THROUGHPUT",
            absent,
        )
    if sep:
        raise DeviceError(
            f"device {requested}: unknown device list prefix {prefix!r}; "
            f"use one of {', '.join(VIRTUAL_DEVICES)} or a device; devices here: {have}"
        )
    if not _present(text, available):
        raise DeviceError(f"device {requested} does not exist here; devices here: {have}")
    return DevicePlan(requested, text, "THROUGHPUT")
