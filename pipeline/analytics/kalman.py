"""A constant-velocity Kalman filter over boxes, batched, driven by time in seconds.

A box is centre x, centre y, width and height, each with a velocity in pixels per second.
The noise is ByteTrack's (standard deviations proportional to the box size: 1/20 for
positions, 1/160 for velocities, per frame of a 30 fps video), made continuous in time: the
process noise grows with the seconds elapsed, so four predictions of 1/30 s add the same
uncertainty as one of 4/30 s, and a stream sampled with `--every 3` or at a variable rate is
modelled like the full one.

All of ByteTrack's noise matrices are diagonal, so each of the four coordinates is an
independent filter of (position, velocity) with a 2x2 covariance; it is computed so, element
by element over every box at once, instead of with 8x8 matrices (the same numbers, several
times faster, which keeps 50 objects well under a millisecond a frame).

A filter state is an array (N, 5, 4): per box, rows position, velocity and the covariance
terms pp, pv, vv, each for x, y, w, h.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

POSITION_WEIGHT = 1.0 / 20.0
VELOCITY_WEIGHT = 1.0 / 160.0
REFERENCE_FPS = 30.0  # the frame rate ByteTrack's per-frame noise figures were set for

POS, VEL, PP, PV, VV = range(5)
_SIZE_OF = [2, 3, 2, 3]  # the size each coordinate's noise scales with: w, h, w, h


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) corners to (N, 4) centre x, centre y, width, height."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate((boxes[:, :2] + 0.5 * wh, wh), axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = 0.5 * boxes[:, 2:]
    return np.concatenate((boxes[:, :2] - half, boxes[:, :2] + half), axis=1)


def initiate(boxes: np.ndarray) -> np.ndarray:
    """States (N, 5, 4) of new tracks at boxes (N, 4) xyxy, at rest."""
    measured = xyxy_to_xywh(boxes.astype(np.float64))
    scale = np.abs(measured[:, _SIZE_OF])
    state = np.zeros((len(boxes), 5, 4))
    state[:, POS] = measured
    state[:, PP] = (2 * POSITION_WEIGHT * scale) ** 2
    state[:, VV] = (10 * VELOCITY_WEIGHT * REFERENCE_FPS * scale) ** 2
    return state


@lru_cache(maxsize=32)  # a stream's frames keep a few intervals: computed once each
def _transition(seconds: float) -> np.ndarray:
    """The (20, 20) map of a flattened state over `seconds`, noise aside (rows of the
    flattened state: position, velocity, pp, pv, vv, four each); read-only."""
    dt = seconds
    eye = np.eye(4)
    blocks = np.zeros((5, 5, 4, 4))
    for i in range(5):
        blocks[i, i] = eye
    blocks[POS, VEL] = dt * eye  # position += dt velocity
    blocks[PP, PV] = 2 * dt * eye  # pp += 2 dt pv + dt² vv
    blocks[PP, VV] = dt * dt * eye
    blocks[PV, VV] = dt * eye  # pv += dt vv
    transition = blocks.transpose(0, 2, 1, 3).reshape(20, 20).T.copy()
    transition.flags.writeable = False
    return transition


_POSITION_RATE = REFERENCE_FPS * POSITION_WEIGHT**2  # variance per second, per size²
_VELOCITY_RATE = REFERENCE_FPS * (REFERENCE_FPS * VELOCITY_WEIGHT) ** 2


def predict(state: np.ndarray, seconds: float) -> np.ndarray:
    """The states `seconds` later (a new array). Written as one matrix product and the
    noise: on a frame with a few objects, numpy's cost per call is most of the cost."""
    if len(state) == 0 or seconds <= 0:
        return state.copy()
    out = (state.reshape(-1, 20) @ _transition(seconds)).reshape(-1, 5, 4)
    size2 = np.square(state[:, POS][:, _SIZE_OF])
    out[:, PP] += (_POSITION_RATE * seconds) * size2
    out[:, VV] += (_VELOCITY_RATE * seconds) * size2
    return out


def update(state: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The states corrected by measured boxes (N, 4) xyxy (a new array)."""
    if len(state) == 0:
        return state.copy()
    pos, vel, pp, pv, vv = state.transpose(1, 0, 2)
    inverse = 1.0 / (pp + POSITION_WEIGHT**2 * np.square(pos[:, _SIZE_OF]))
    gain_pos, gain_vel = pp * inverse, pv * inverse  # the innovation variance is pp + noise
    innovation = xyxy_to_xywh(boxes) - pos
    kept = 1.0 - gain_pos
    return np.stack(
        (
            pos + gain_pos * innovation,
            vel + gain_vel * innovation,
            pp * kept,
            pv * kept,
            vv - gain_vel * pv,
        ),
        axis=1,
    )


def boxes_of(state: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy boxes of the states' positions."""
    return xywh_to_xyxy(state[:, POS])
