"""An independent reference: plain synchronous OpenVINO runs with textbook pre/postprocessing.

Written without the pipeline's code so that the comparison can catch its mistakes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openvino as ov


def read_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames, i = {}, 0
    while len(frames) < len(indices):
        ok, image = capture.read()
        assert ok, f"{path}: frame {i} missing"
        if i in indices:
            frames[i] = image
        i += 1
    return frames


def _compile(model_xml: Path) -> ov.CompiledModel:
    return ov.Core().compile_model(str(model_xml), "CPU")


def ssd_reference(model_xml: Path, image: np.ndarray, conf: float) -> list[tuple]:
    """(class_id, score, x1, y1, x2, y2) for an OMZ SSD model, by the book."""
    compiled = _compile(model_xml)
    blob = cv2.resize(image, (256, 256)).transpose(2, 0, 1)[None].astype(np.float32)
    out = compiled({0: blob})[compiled.output(0)].reshape(-1, 7)
    h, w = image.shape[:2]
    rows = []
    for image_id, label, score, x1, y1, x2, y2 in out:
        if image_id < 0:
            break
        if score > conf:
            box = np.clip([x1 * w, y1 * h, x2 * w, y2 * h], 0, [w, h, w, h])
            rows.append((int(label), float(score), *map(float, box)))
    return rows


def _letterbox(image: np.ndarray, size: int = 640) -> tuple[np.ndarray, float, int, int]:
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    padded = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    return padded, r, left, top


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def yolo_reference(model_xml: Path, image: np.ndarray, conf=0.25, iou=0.7) -> list[tuple]:
    """Ultralytics-style decoding with a loop NMS per class."""
    compiled = _compile(model_xml)
    padded, r, left, top = _letterbox(image)
    blob = (padded[:, :, ::-1].transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    pred = compiled({0: blob})[compiled.output(0)][0].T  # (N, 84)
    h, w = image.shape[:2]
    candidates = []
    for row in pred:
        cls = int(np.argmax(row[4:]))
        score = float(row[4 + cls])
        if score > conf:
            cx, cy, bw, bh = row[:4]
            candidates.append(
                (score, cls, np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))
            )
    candidates.sort(key=lambda c: -c[0])
    kept = []
    for score, cls, box in candidates:
        if all(k[1] != cls or _iou(k[2], box) <= iou for k in kept):
            kept.append((score, cls, box))
    rows = []
    for score, cls, box in kept:
        x1, y1, x2, y2 = (box - [left, top, left, top]) / r
        rows.append((cls, score, *np.clip([x1, y1, x2, y2], 0, [w, h, w, h]).tolist()))
    return rows
