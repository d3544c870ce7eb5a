"""Detections with masks and keypoints: validated like the rest, written compactly to JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.detections import Detections


def one_detection(**extra):
    return Detections(
        np.array([[10, 20, 30, 50]], np.float32), np.array([0.9], np.float32), np.array([0]),
        ("person",), **extra,
    )  # fmt: skip


def test_a_mask_is_written_as_a_polygon_in_source_pixels():
    mask = np.zeros((1, 60, 40), bool)
    mask[0, 20:50, 10:30] = True  # the box, filled
    item = one_detection(masks=mask).to_list()[0]
    (polygon,) = item["mask"]
    xs, ys = polygon[0::2], polygon[1::2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (10, 29, 20, 49)
    assert len(polygon) == 8, "a rectangle simplifies to its 4 corners"
    json.dumps(item)


def test_keypoints_are_written_as_x_y_conf_triples():
    points = np.array([[[12.345, 22.0, 0.91234], [15.0, 30.06, 0.1]]], np.float32)
    item = one_detection(keypoints=points).to_list()[0]
    assert item["keypoints"] == [[12.3, 22.0, 0.912], [15.0, 30.1, 0.1]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"masks": np.zeros((2, 60, 40), bool)}, r"masks must be bool of shape \(1, H, W\)"),
        ({"masks": np.zeros((1, 60, 40), np.float32)}, "masks must be bool"),
        ({"keypoints": np.zeros((1, 17, 2), np.float32)}, r"keypoints must have shape \(1, K, 3\)"),
        ({"keypoints": np.zeros((3, 17, 3), np.float32)}, r"keypoints must have shape \(1, K, 3\)"),
    ],
)
def test_masks_or_keypoints_that_do_not_match_the_boxes_are_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        one_detection(**extra)


def test_detections_without_masks_or_keypoints_write_neither():
    item = one_detection().to_list()[0]
    assert "mask" not in item and "keypoints" not in item
