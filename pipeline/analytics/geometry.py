"""Plane geometry for tracking and counting: box overlap, sides of a segment, polygons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of `a` (M, 4) with every box of `b` (N, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # one coordinate at a time on 2-D arrays: several times faster than (M, N, 2) arrays
    width = np.minimum(a[:, 2, None], b[None, :, 2]) - np.maximum(a[:, 0, None], b[None, :, 0])
    height = np.minimum(a[:, 3, None], b[None, :, 3]) - np.maximum(a[:, 1, None], b[None, :, 1])
    np.maximum(width, 0.0, out=width)
    np.maximum(height, 0.0, out=height)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def cross(o: Point, a: Point, b: Point) -> float:
    """The z of the cross product (a - o) x (b - o): positive when b is on the right of o→a
    as seen on an image (y pointing down), negative on its left, zero on the line."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, q: Point, r: Point) -> bool:
    """r, known to be collinear with p→q, lies within its bounding box."""
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether segments p1p2 and q1q2 share a point (touching and overlapping included)."""
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def signed_distance(point: Point, polygon: Sequence[Point]) -> float:
    """Distance from `point` to the polygon's boundary: positive inside, negative outside.

    Plain Python, not `cv2.pointPolygonTest`: OpenCV releases the GIL around every call, and
    called per tracked object per frame from a callback thread, each release let another
    thread in for up to a switch interval (measured: tracking with one zone cost a quarter of
    the pipeline's throughput that way)."""
    x, y = point
    inside = False
    nearest = float("inf")
    n = len(polygon)
    for i in range(n):
        (ax, ay), (bx, by) = polygon[i - 1], polygon[i]
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside  # a ray to the right crosses this edge
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / length2))
        ex, ey = ax + t * dx - x, ay + t * dy - y
        nearest = min(nearest, ex * ex + ey * ey)
    distance = nearest**0.5
    return distance if inside else -distance


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace)."""
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return 0.5 * float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))


def self_intersects(points: Sequence[Point]) -> bool:
    """Whether two edges of a closed polygon that are not neighbours cross or touch."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    return any(
        segments_intersect(*edges[i], *edges[j])
        for i in range(n)
        for j in range(i + 2, n)
        if not (i == 0 and j == n - 1)  # the first and last edges share the first corner
    )


def folds_back(points: Sequence[Point]) -> bool:
    """Whether a closed polygon turns back on itself at a corner (a spike of no width)."""
    n = len(points)
    for i in range(n):
        a, b, c = points[i - 1], points[i], points[(i + 1) % n]
        if (
            cross(a, b, c) == 0
            and (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0
        ):
            return True
    return False
