"""A mosaic of streams: a grid of tiles (each keeping its stream's aspect ratio) under a header."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.detections import Detections
from pipeline.outputs.draw import draw_label, draw_motion, draw_result

HEADER_HEIGHT = 28
_BACKGROUND = (24, 24, 24)
_HEADER = (48, 48, 48)
_CAPTION = (32, 32, 32)


@dataclass(frozen=True)
class Tile:
    """One stream's latest frame, its detections (with their track ids and the tracking
    overlay, when tracked) and the figures for its caption."""

    name: str
    image: np.ndarray | None  # None until the stream's first result
    detections: Detections | None
    caption: str
    track_ids: tuple[int | None, ...] | None = None
    overlay: object | None = None
    motion: tuple[tuple[float, float, float, float], ...] = ()  # moving regions (gating on)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) for `count` tiles on a canvas, as square-ish as the canvas allows."""
    if count <= 0:
        return 1, 1
    best = (1, count)
    best_cell = 0.0
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        cell = min(width / columns / 16, height / rows / 9)  # cells sized for 16:9 frames
        if cell > best_cell:
            best, best_cell = (columns, rows), cell
    return best


def fit(src_w: int, src_h: int, cell: Rect) -> Rect:
    """The largest rectangle of the source's aspect ratio centred in `cell`."""
    scale = min(cell.width / src_w, cell.height / src_h)
    w, h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    return Rect(cell.x + (cell.width - w) // 2, cell.y + (cell.height - h) // 2, w, h)


def layout(count: int, width: int, height: int) -> list[Rect]:
    """The cells of `count` tiles under the header, row by row."""
    columns, rows = grid_shape(count, width, height - HEADER_HEIGHT)
    cell_w, cell_h = width // columns, (height - HEADER_HEIGHT) // rows
    return [
        Rect((i % columns) * cell_w, HEADER_HEIGHT + (i // columns) * cell_h, cell_w, cell_h)
        for i in range(count)
    ]


def compose(tiles: list[Tile], header: str, size: tuple[int, int]) -> tuple[np.ndarray, list[Rect]]:
    """The mosaic image (BGR, `size` = (width, height)) and where each tile's frame landed."""
    width, height = size
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
    canvas[:HEADER_HEIGHT] = _HEADER
    cv2.putText(canvas, header, (8, HEADER_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    placed = []
    for tile, cell in zip(tiles, layout(len(tiles), width, height), strict=True):
        if tile.image is None:
            rect = Rect(cell.x, cell.y, cell.width, cell.height)
        else:
            src_h, src_w = tile.image.shape[:2]
            rect = fit(src_w, src_h, cell)
            canvas[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width] = cv2.resize(
                tile.image, (rect.width, rect.height), interpolation=cv2.INTER_LINEAR
            )
            if tile.motion:
                draw_motion(canvas, tile.motion, rect.width / src_w, (rect.x, rect.y))
            if tile.detections is not None and (len(tile.detections) or tile.overlay):
                draw_result(
                    canvas, tile.detections, tile.track_ids, tile.overlay,
                    scale=rect.width / src_w, offset=(rect.x, rect.y), thickness=2,
                )  # fmt: skip
        draw_label(canvas, f"{tile.name}  {tile.caption}", (rect.x, rect.y + 20), _CAPTION)
        placed.append(rect)
    return canvas, placed
