"""The service's recordings: each camera with `record = true` recorded by stream copy, its event
clips and snapshots, and retention of all three, under the camera's output folder:

    [output] dir/<camera>/recordings/<UTC start>.mp4   continuous segments
    [output] dir/<camera>/clips/<camera>-<event>-<UTC time>.mp4
    [output] dir/<camera>/snapshots/<camera>-<track>-<UTC time>.jpg (and -crop.jpg)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pipeline.apps.serve.config import TIERS, CameraConfig, ServiceConfig
from pipeline.recording.clips import ClipOptions
from pipeline.recording.evidence import EvidencePlan
from pipeline.recording.retention import Retention, Tier
from sources.base import VideoSource
from sources.errors import mask_credentials

log = logging.getLogger(__name__)

FOLDERS = {"continuous": "recordings", "clips": "clips", "snapshots": "snapshots"}


def camera_folder(config: ServiceConfig, camera: str) -> Path:
    return config.resolve(config.output.dir) / camera


def recordings_folder(config: ServiceConfig, camera: str) -> Path:
    """Where a camera's segments are (`GET /api/recordings` cuts from there)."""
    return camera_folder(config, camera) / FOLDERS["continuous"]


def evidence_plan(config: ServiceConfig, name: str) -> EvidencePlan | None:
    """Where a camera's clips and snapshots go (None: neither is on, or not a camera)."""
    camera = config.cameras.get(name)
    if camera is None or not config.output.dir or not (camera.clips or camera.snapshots):
        return None
    folder = camera_folder(config, name)
    return EvidencePlan(
        base=folder,
        recording=folder / FOLDERS["continuous"] if camera.clips else None,
        clips=folder / FOLDERS["clips"] if camera.clips else None,
        snapshots=folder / FOLDERS["snapshots"] if camera.snapshots else None,
        clip_options=ClipOptions(pre=camera.clip_pre_seconds, post=camera.clip_post_seconds),
    )


class Recorders:
    """One `CameraRecorder` per recorded camera, started and stopped with the camera (kept
    running across a pipeline restart when its settings did not change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, tuple[tuple, object]] = {}  # name -> (settings, recorder)

    def start(
        self, config: ServiceConfig, camera: CameraConfig, source: VideoSource
    ) -> VideoSource:
        """Record `camera` (if it is to be) and return the source to analyse it from: its own
        `source`, or, when the camera is recorded from the URL it is analysed from, `source`'s
        stream decoded from the recorder's packets (one connection to the camera)."""
        from pipeline.recording import CameraRecorder, RecordOptions
        from pipeline.recording.shared_connection import (
            decoded_from,
            record_options_for,
            shares_connection,
        )

        if not camera.record:
            self.stop(camera.name)
            return source
        url = camera.record_source or config.source_of(camera)
        folder = recordings_folder(config, camera.name)
        options = RecordOptions(camera.segment_seconds, camera.rtsp_transport)
        shared = shares_connection(source, url)
        if shared:
            options = record_options_for(source, options)
        settings = (url, str(folder), options)
        with self._lock:
            current = self._running.get(camera.name)
        if current is not None and current[0] == settings:
            recorder = current[1]
        else:
            self.stop(camera.name)
            recorder = CameraRecorder(camera.name, url, folder, options).start()
            with self._lock:
                self._running[camera.name] = (settings, recorder)
            log.info("camera %s: recording %s into %s", camera.name, mask_credentials(url), folder)
        return decoded_from(recorder, source) if shared else source

    def stop(self, name: str) -> None:
        with self._lock:
            current = self._running.pop(name, None)
        if current is not None:
            current[1].stop()

    def get(self, name: str):
        with self._lock:
            current = self._running.get(name)
        return None if current is None else current[1]

    def close(self) -> None:
        with self._lock:
            names = list(self._running)
        for name in names:
            self.stop(name)


def retention_for(config: ServiceConfig) -> Retention | None:
    """Retention of `[recording]`'s tiers over every camera's folders (None: no limit set)."""
    if not config.output.dir:
        return None
    root = config.resolve(config.output.dir)
    tiers = []
    for tier in TIERS:
        days, size = config.recording.limits(tier)
        if days is not None or size is not None:
            tiers.append(Tier(tier, root, days, size, pattern=f"*/{FOLDERS[tier]}/*"))
    return Retention(tiers) if tiers else None
