"""Greedy non-maximum suppression with torchvision's semantics, vectorised in numpy.

Written here rather than taken from `cv2.dnn.NMSBoxes` because matching Ultralytics needs
torchvision's exact rule (suppress when IoU > threshold, areas without the +1 pixel) and no
second score filter; candidate counts after the confidence filter are small.
"""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept, highest score first. `boxes` is (N, 4) x1 y1 x2 y2."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
