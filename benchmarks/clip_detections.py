"""Detections of the shared clips from a direct OpenVINO run, cached in /tmp as .npz.

Both trackers of `tracker_vs_trackers.py` are fed these same detections. Pre- and
postprocessing are written out here (not vapipe's adapters): a plain resize for the
person-vehicle-bike SSD, Ultralytics' letterbox and class-aware NMS for YOLO11n.

    python benchmarks/clip_detections.py   # computes both caches (about a minute)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CAR = SHARED / "videos" / "car-detection.mp4"
PERSON = SHARED / "videos" / "one-by-one-person-detection.mp4"
PVB_XML = (
    SHARED / "models/person-vehicle-bike-detection-2000/FP16-INT8"
    "/person-vehicle-bike-detection-2000.xml"
)
YOLO_XML = SHARED / "models/yolo11n_int8_openvino_model/yolo11n.xml"
CACHE = Path("/tmp")
LOW_CONF = 0.1  # kept down to here, so that a tracker's low-score association has input


@dataclass(frozen=True)
class ClipDetections:
    """Per frame: boxes (N, 4) xyxy source pixels, scores (N,), class ids (N,); and the
    frame timestamps in seconds, the frame size (width, height)."""

    boxes: list[np.ndarray]
    scores: list[np.ndarray]
    class_ids: list[np.ndarray]
    timestamps: np.ndarray
    size: tuple[int, int]

    def above(self, conf: float) -> ClipDetections:
        keep = [s > conf for s in self.scores]
        return ClipDetections(
            [b[k] for b, k in zip(self.boxes, keep, strict=True)],
            [s[k] for s, k in zip(self.scores, keep, strict=True)],
            [c[k] for c, k in zip(self.class_ids, keep, strict=True)],
            self.timestamps,
            self.size,
        )

    def __len__(self) -> int:
        return len(self.scores)


def _frames(path: Path):
    capture = cv2.VideoCapture(str(path))
    while True:
        ok, image = capture.read()
        if not ok:
            break
        yield image, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    capture.release()


def _pvb(image: np.ndarray, compiled: ov.CompiledModel) -> tuple[np.ndarray, ...]:
    blob = cv2.resize(image, (256, 256)).transpose(2, 0, 1)[None].astype(np.float32)
    rows = compiled({0: blob})[compiled.output(0)].reshape(-1, 7)
    ends = np.flatnonzero(rows[:, 0] < 0)
    rows = rows[: ends[0]] if ends.size else rows
    rows = rows[rows[:, 2] > LOW_CONF]
    h, w = image.shape[:2]
    boxes = np.clip(rows[:, 3:7] * [w, h, w, h], 0, [w, h, w, h]).astype(np.float32)
    return boxes, rows[:, 2].astype(np.float32), rows[:, 1].astype(int)


def _yolo_persons(image: np.ndarray, compiled: ov.CompiledModel) -> tuple[np.ndarray, ...]:
    h, w = image.shape[:2]
    gain = min(640 / h, 640 / w)
    nw, nh = round(w * gain), round(h * gain)
    top, left = round((640 - nh) / 2 - 0.1), round((640 - nw) / 2 - 0.1)
    padded = cv2.copyMakeBorder(
        cv2.resize(image, (nw, nh)), top, 640 - nh - top, left, 640 - nw - left,
        cv2.BORDER_CONSTANT, value=(114, 114, 114),
    )  # fmt: skip
    blob = (padded[:, :, ::-1].transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    pred = compiled({0: blob})[compiled.output(0)][0]  # (84, 8400)
    classes = pred[4:].argmax(axis=0)
    scores = pred[4:].max(axis=0)
    keep = np.flatnonzero((scores > LOW_CONF) & (classes == 0))  # persons
    cx, cy, bw, bh = pred[:4, keep]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    chosen = cv2.dnn.NMSBoxes(
        np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).tolist(),
        scores[keep].tolist(), LOW_CONF, 0.7,
    )  # fmt: skip
    chosen = np.asarray(chosen, int).reshape(-1)
    boxes = (boxes[chosen] - [left, top, left, top]) / gain
    boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
    return boxes, scores[keep][chosen].astype(np.float32), np.zeros(len(chosen), int)


def load(which: str) -> ClipDetections:
    """`pvb-car` (person-vehicle-bike on the car clip) or `yolo-person` (YOLO11n persons on
    the one-by-one clip), computed once and then read from /tmp."""
    clip, xml, detect = {
        "pvb-car": (CAR, PVB_XML, _pvb),
        "yolo-person": (PERSON, YOLO_XML, _yolo_persons),
    }[which]
    path = CACHE / f"vapipe-{which}-detections.npz"
    if not path.exists():
        compiled = ov.Core().compile_model(str(xml), "CPU")
        rows, stamps, size = [], [], (0, 0)
        for index, (image, seconds) in enumerate(_frames(clip)):
            boxes, scores, class_ids = detect(image, compiled)
            rows += [np.column_stack([np.full(len(scores), index), boxes, scores, class_ids])]
            stamps.append(seconds)
            size = (image.shape[1], image.shape[0])
        np.savez(path, rows=np.concatenate(rows), timestamps=np.array(stamps), size=size)
    data = np.load(path)
    rows, stamps = data["rows"], data["timestamps"]
    frame = rows[:, 0].astype(int)
    groups = [rows[frame == i] for i in range(len(stamps))]
    return ClipDetections(
        [g[:, 1:5].astype(np.float32) for g in groups],
        [g[:, 5].astype(np.float32) for g in groups],
        [g[:, 6].astype(int) for g in groups],
        stamps,
        tuple(int(v) for v in data["size"]),
    )


if __name__ == "__main__":
    for name in sys.argv[1:] or ["pvb-car", "yolo-person"]:
        d = load(name)
        print(name, len(d), "frames", sum(len(s) for s in d.scores), "detections", d.size)
