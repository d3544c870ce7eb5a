"""Roboflow's `trackers` ByteTrack (and supervision's LineZone) on given detections.

Runs in the separate virtual environment that has `trackers` installed (started by
`tracker_vs_trackers.py`, which reads its JSON answer); imports nothing from vapipe.

    /tmp/trk/bin/python benchmarks/trackers_side.py INPUT.npz OUTPUT.json
INPUT.npz: `rows` (N, 7) frame, x1, y1, x2, y2, score, class id; `timestamps` (F,) seconds;
`lines` (L, 4) x1, y1, x2, y2 in pixels; `repeat` how many times to time the run; `timed`
whether the tracker gets the timestamps (else its defaults).
OUTPUT.json: `track_ids` per row (-1 for none), `lines` [[in, out], ...], `cpu_ms_per_frame`.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker


def run(rows: np.ndarray, stamps: np.ndarray, lines: np.ndarray, timed: bool):
    """With `timed`, the tracker gets the clip's frame rate and each frame's timestamp;
    otherwise its defaults (30 fps assumed, no timestamps), as most examples use it."""
    rate = 1.0 / float(np.median(np.diff(stamps)))
    tracker = ByteTrackTracker(frame_rate=rate) if timed else ByteTrackTracker()
    zones = [
        sv.LineZone(
            start=sv.Point(float(x1), float(y1)),
            end=sv.Point(float(x2), float(y2)),
            triggering_anchors=[sv.Position.BOTTOM_CENTER],
        )
        for x1, y1, x2, y2 in lines
    ]
    frame_of = rows[:, 0].astype(int)
    ids = np.full(len(rows), -1, int)
    for index, stamp in enumerate(stamps):
        picked = np.flatnonzero(frame_of == index)
        detections = sv.Detections(
            xyxy=rows[picked, 1:5].astype(np.float32),
            confidence=rows[picked, 5].astype(np.float32),
            class_id=rows[picked, 6].astype(int),
            data={"row": picked},
        )
        tracked = tracker.update(detections, timestamp=float(stamp) if timed else None)
        if len(tracked):
            ids[tracked.data["row"]] = tracked.tracker_id
        for zone in zones:
            zone.trigger(tracked)
    return ids, [[z.in_count, z.out_count] for z in zones]


def main() -> None:
    data = np.load(sys.argv[1])
    rows, stamps, lines = data["rows"], data["timestamps"], data["lines"].reshape(-1, 4)
    best = float("inf")
    for _ in range(int(data["repeat"])):
        started = time.process_time()
        ids, counts = run(rows, stamps, lines, bool(data["timed"]))
        best = min(best, time.process_time() - started)
    answer = {
        "track_ids": ids.tolist(),
        "lines": counts,
        "cpu_ms_per_frame": 1000 * best / max(1, len(stamps)),
    }
    with open(sys.argv[2], "w", encoding="utf-8") as file:
        json.dump(answer, file)


if __name__ == "__main__":
    main()
