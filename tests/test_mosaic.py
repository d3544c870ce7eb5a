"""The mosaic layout and the live view behind the demo, without a display."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import Detections, Result
from pipeline.apps.demo.app import _next_focus
from pipeline.outputs.live_view import LiveView
from pipeline.outputs.mosaic import HEADER_HEIGHT, Rect, fit, grid_shape, layout
from sources import Frame


@pytest.mark.parametrize(
    ("count", "shape"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (9, (3, 3))]
)
def test_grid_shape_is_square_ish_on_a_wide_canvas(count, shape):
    assert grid_shape(count, 1280, 720 - HEADER_HEIGHT) == shape


@pytest.mark.parametrize(("w", "h"), [(768, 432), (640, 360), (512, 512), (1080, 1920)])
def test_tiles_keep_their_streams_aspect_ratio(w, h):
    for cell in layout(3, 1280, 720):
        rect = fit(w, h, cell)
        assert abs(rect.width / rect.height - w / h) < 0.02
        assert cell.x <= rect.x and rect.x + rect.width <= cell.x + cell.width
        assert cell.y <= rect.y and rect.y + rect.height <= cell.y + cell.height


def _result(stream: str, index: int, shade: int) -> Result:
    image = np.full((432, 768, 3), shade, np.uint8)
    boxes = np.array([[100, 100, 300, 300]], np.float32)
    detections = Detections(boxes, np.array([0.9], np.float32), np.array([0]), ("car",))
    return Result(Frame(stream, index, 0.0, 0.0, image), detections, 0.05)


def test_the_live_view_keeps_the_latest_result_and_renders_one_stream_or_all():
    view = LiveView(["a", "b"])
    for i in range(3):
        view.write(_result("a", i, 80))
    mosaic = view.render((960, 540))
    figures = view.figures()
    assert [s["processed"] for s in figures["streams"]] == [3, 0]
    assert figures["frames_shown"] == {"a": 2}
    x, y, w, h = figures["tiles"]["a"]
    assert abs(int(mosaic[y + h // 2, x + w // 2, 0]) - 80) <= 1, "a's picture in a's tile"
    single = view.render((960, 540), focus="a")
    assert list(view.figures()["tiles"]) == ["a"]
    _, _, w_single, _ = view.figures()["tiles"]["a"]
    assert w_single > w and single.shape == (540, 960, 3)


def test_the_focus_key_cycles_through_each_stream_and_back_to_the_mosaic():
    names = ["a", "b"]
    seen = [None]
    for _ in range(3):
        seen.append(_next_focus(names, seen[-1]))
    assert seen == [None, "a", "b", None]


def test_fit_centres_the_frame_in_its_cell():
    assert fit(200, 100, Rect(0, 0, 400, 400)) == Rect(0, 100, 400, 200)
