"""Masks and skeletons drawn where the detections put them: the annotated video (`--save-video`,
decoded back) and the mosaic of the demo and browser views, on four frames of the person clip
(one person standing at the desk) with the segmentation and the pose model.

The reference places are the run's own JSONL: each mask's polygons filled, each keypoint with
confidence >= 0.5 and the COCO skeleton's edges between them. A mask's inside must carry the
translucent tint (source x 0.55 + class colour x 0.45), the rest of its box must not; a
skeleton edge drawn over the person's dark clothes must be bright, a keypoint amber. The clip is
cut to MJPEG, so the annotated copy is MJPEG too and the comparisons allow for its error.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import PERSON, SHARED, cut_clip, read_jsonl, run_cli

from pipeline.detections import COCO_SKELETON, Detections
from pipeline.outputs.draw import class_color
from pipeline.outputs.mosaic import Tile, compose

MODELS = SHARED / "models"
SEG = MODELS / "yolo11n-seg_int8_openvino_model"
POSE = MODELS / "yolov8n-pose_int8_openvino_model"
ALPHA = 0.45


def _decode(path) -> list[np.ndarray]:
    capture, images = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drawing")
    return cut_clip(PERSON, folder / "desk.avi", 4, start=400, fourcc="MJPG")


def _annotated(clip, model, out):
    proc = run_cli("run", clip, "--model", model, "--save-video", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    frames = read_jsonl(out / "desk.jsonl")
    source, drawn = _decode(clip), _decode(out / "desk.avi")
    assert len(source) == len(drawn) == len(frames) == 4
    return source, drawn, [f["detections"] for f in frames]


def _mask(polygons, shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.array(polygon, np.int32).reshape(-1, 2)], 1)
    return mask.astype(bool)


def _inner_box(box, shape, margin: int) -> np.ndarray:
    inside = np.zeros(shape, bool)
    x1, y1, x2, y2 = (round(v) for v in box)
    inside[y1 + margin : y2 - margin, x1 + margin : x2 - margin] = True
    return inside


def _error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference per channel."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _check_tint(source, drawn, detections, scale=1.0, offset=(0, 0)) -> int:
    """Every mask's inside tinted, its box's rest not; returns the pixels checked."""
    height, width = source.shape[:2]
    masks = [_mask(d["mask"], (height, width)) for d in detections]
    coverage = np.sum(masks, axis=0)
    checked = 0
    for d, mask in zip(detections, masks, strict=True):
        kernel = np.ones((9, 9), np.uint8)
        inner = _inner_box(d["box"], (height, width), 8)
        inside = cv2.erode(mask.view(np.uint8), kernel).astype(bool) & inner & (coverage == 1)
        outside = inner & ~cv2.dilate(mask.view(np.uint8), kernel).astype(bool) & (coverage == 0)
        if scale != 1.0:  # where the tile put these pixels
            ys, xs = np.nonzero(inside)
            ys_o, xs_o = np.nonzero(outside)
            at = (np.round(ys * scale).astype(int) + offset[1],
                  np.round(xs * scale).astype(int) + offset[0])  # fmt: skip
            at_o = (np.round(ys_o * scale).astype(int) + offset[1],
                    np.round(xs_o * scale).astype(int) + offset[0])  # fmt: skip
            got, got_o = drawn[at], drawn[at_o]
        else:
            got, got_o = drawn[inside], drawn[outside]
        colour = np.array(class_color(d["class_id"]), np.float32)
        tinted = source[inside] * (1 - ALPHA) + colour * ALPHA
        assert inside.sum() > 500, d["label"]
        assert _error(got, tinted) < 8, d["label"]
        assert _error(got, source[inside]) > 3 * _error(got, tinted) + 10, d["label"]
        if outside.sum() > 200:
            assert _error(got_o, source[outside]) < 8, d["label"]
        checked += int(inside.sum())
    return checked


def test_the_annotated_video_tints_each_mask_and_not_the_rest_of_its_box(clip, tmp_path):
    source, drawn, detections = _annotated(clip, SEG, tmp_path)
    persons = 0
    for image, out, found in zip(source, drawn, detections, strict=True):
        with_masks = [d for d in found if d["mask"]]
        _check_tint(image, out, with_masks)
        persons += sum(d["label"] == "person" for d in with_masks)
        far = np.ones(image.shape[:2], bool)  # away from every box and its label
        for d in found:
            x1, y1, x2, y2 = (round(v) for v in d["box"])
            far[max(0, y1 - 30) : y2 + 10, max(0, x1 - 10) : x2 + 10] = False
        assert _error(out[far], image[far]) < 5
    assert persons == 4

    # the mosaic (demo window and browser view) at about half size, placed by its rect
    image, found = source[0], detections[0]
    masks = np.array([_mask(d["mask"], image.shape[:2]) for d in found])
    tile_detections = Detections(
        np.array([d["box"] for d in found], np.float32),
        np.array([d["score"] for d in found], np.float32),
        np.array([d["class_id"] for d in found]), masks=masks,
    )  # fmt: skip
    canvas, (rect,) = compose([Tile("desk", image, tile_detections, "")], "view", (400, 260))
    scale = rect.width / image.shape[1]
    small = cv2.resize(image, (rect.width, rect.height), interpolation=cv2.INTER_LINEAR)
    reference = np.zeros_like(canvas)
    reference[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width] = small
    # compare against the resized source at the same places: sample it as the canvas is
    big = cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    assert _check_tint(big, canvas, [d for d in found if d["mask"]], scale, (rect.x, rect.y))


def _bright(image: np.ndarray, x: float, y: float) -> int:
    """The brightest darkest-channel value around (x, y): a white line anywhere in 3x3."""
    xi, yi = round(x), round(y)
    return int(image[yi - 1 : yi + 2, xi - 1 : xi + 2].min(axis=2).max())


def _check_skeletons(source, drawn, detections, scale=1.0, offset=(0, 0)) -> tuple[int, int]:
    """(edge samples over dark clothes, those drawn bright)."""
    dark = bright = 0
    for d in detections:
        points = np.array(d["keypoints"], np.float32)
        for a, b in COCO_SKELETON:
            if min(points[a, 2], points[b, 2]) < 0.5:
                continue
            for t in np.linspace(0.25, 0.75, 6):
                x, y = points[a, :2] + t * (points[b, :2] - points[a, :2])
                if _bright(source, x, y) < 110:
                    dark += 1
                    drawn_x, drawn_y = x * scale + offset[0], y * scale + offset[1]
                    bright += _bright(drawn, drawn_x, drawn_y) > 170
        for x, y, conf in points:
            if conf >= 0.5:
                b_, g, r = drawn[round(y * scale) + offset[1], round(x * scale) + offset[0]]
                assert int(r) > 150 and int(g) > 120 and int(b_) < int(g) - 60, (x, y)
    return dark, bright


def test_the_annotated_video_draws_skeletons_along_the_keypoints(clip, tmp_path):
    source, drawn, detections = _annotated(clip, POSE, tmp_path)
    dark = bright = 0
    for image, out, found in zip(source, drawn, detections, strict=True):
        assert [d["label"] for d in found] == ["person"]
        d, b = _check_skeletons(image, out, found)
        dark, bright = dark + d, bright + b
    assert dark >= 60 and bright >= 0.9 * dark, (dark, bright)

    # the mosaic at its full size (one tile fills it)
    image, found = source[0], detections[0]
    tile_detections = Detections(
        np.array([d["box"] for d in found], np.float32),
        np.array([d["score"] for d in found], np.float32),
        np.array([d["class_id"] for d in found]),
        keypoints=np.array([d["keypoints"] for d in found], np.float32),
    )  # fmt: skip
    size = (image.shape[1], image.shape[0] + 28)  # the header above the tile
    canvas, (rect,) = compose([Tile("desk", image, tile_detections, "")], "view", size)
    assert (rect.width, rect.height) == (image.shape[1], image.shape[0])
    d, b = _check_skeletons(image, canvas, found, 1.0, (rect.x, rect.y))
    assert d >= 15 and b == d, (d, b)
