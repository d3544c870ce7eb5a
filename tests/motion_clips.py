"""Clips made for motion gating: a still background (frame 150 of the shared car clip, an
empty road) with something changing in a known way. Intra-only MJPG, so that a still frame
decodes the same every time and only what was drawn changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
CAR = SHARED / "car-detection.mp4"
SIZE = (768, 432)


def background() -> np.ndarray:
    capture = cv2.VideoCapture(str(CAR))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 150)
    ok, image = capture.read()
    capture.release()
    assert ok, f"{CAR}: no frame 150"
    return image


def car_sprite() -> np.ndarray:
    """The white car of the car clip (frame 80), cut out."""
    capture = cv2.VideoCapture(str(CAR))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 80)
    ok, image = capture.read()
    capture.release()
    assert ok
    return image[62:338, 262:444].copy()  # checked by looking: the car, a little road around


def write(path: Path, frames: Iterator[np.ndarray], fps: float) -> int:
    """Write `frames` as MJPG (AVI) at `fps`; returns how many."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    count = 0
    for image in frames:
        writer.write(image)
        count += 1
    writer.release()
    return count


def light_jump(path: Path, frames: int = 60, jump_at: int = 20, fps: float = 10.0) -> int:
    """The empty road; from frame `jump_at` on, every pixel much brighter (lights on)."""
    still = background()
    bright = cv2.convertScaleAbs(still, alpha=1.3, beta=50)
    return write(path, (still if i < jump_at else bright for i in range(frames)), fps)


def masked_mover(path: Path, frames: int = 60, fps: float = 10.0) -> int:
    """The empty road with a white block moving back and forth in the top-right corner
    (inside x 0.6..0.9, y 0.05..0.25 of the frame), as a clock or a tree would."""
    still = background()
    width, height = SIZE

    def frame(i: int) -> np.ndarray:
        image = still.copy()
        phase = abs((i % 20) - 10) / 10  # 0..1..0
        x = round(width * (0.6 + 0.2 * phase))
        cv2.rectangle(image, (x, round(height * 0.05)), (x + 60, round(height * 0.25)),
                      (255, 255, 255), -1)  # fmt: skip
        return image

    return write(path, (frame(i) for i in range(frames)), fps)


def mostly_still(path: Path, seconds: float = 180.0, fps: float = 12.5,
                 passes: tuple[float, ...] = (20.0, 60.0, 100.0, 150.0)) -> int:  # fmt: skip
    """Minutes of the empty road with the white car driving across it at the given times
    (each pass about 3 s: alternately up and down through the whole frame)."""
    still = background()
    sprite = car_sprite()
    width, height = SIZE
    sh, sw = sprite.shape[:2]
    crossing = 3.0

    def frame(i: int) -> np.ndarray:
        t = i / fps
        image = still.copy()
        for n, start in enumerate(passes):
            progress = (t - start) / crossing
            if not 0.0 <= progress <= 1.0:
                continue
            car = sprite if n % 2 else cv2.flip(sprite, 0)
            y = (
                round(-sh + progress * (height + sh))
                if n % 2
                else round(height - progress * (height + sh))
            )
            x = round(width * 0.45) - sw // 2
            y1, y2 = max(0, y), min(height, y + sh)
            if y2 > y1:
                image[y1:y2, x : x + sw] = car[y1 - y : y2 - y]
        return image

    return write(path, (frame(i) for i in range(round(seconds * fps))), fps)
