"""Count detections per class in several videos at once, using vapipe's Python API.

    python samples/count_vehicles.py ../shared/videos/car-detection.mp4 \
        ../shared/videos/bottle-detection.mp4 \
        --model ../shared/models/yolo11n_int8_openvino_model
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter

from pipeline import JsonlSink, Pipeline, Result, VapipeError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="AUTO")
    parser.add_argument("--out", help="also write JSON Lines here")
    args = parser.parse_args()

    counts: dict[str, Counter] = {}
    lock = threading.Lock()  # results of different streams arrive on different threads

    def count(result: Result) -> None:
        labels = Counter(result.detections.label(int(c)) for c in result.detections.class_ids)
        with lock:
            counts.setdefault(result.stream, Counter()).update(labels)

    sinks = [count] + ([JsonlSink(args.out)] if args.out else [])
    try:
        with Pipeline(args.sources, args.model, device=args.device, sinks=sinks) as pipeline:
            summary = pipeline.run()
    except VapipeError as error:
        print(f"error: {error}")
        return 2
    for stream in summary.streams:
        top = ", ".join(
            f"{label} {n}" for label, n in counts.get(stream.name, Counter()).most_common(5)
        )
        print(f"{stream.name}: {stream.frames_processed} frames, {top or 'no detections'}")
    print(f"{summary.total_fps:.1f} fps on {', '.join(summary.execution_devices)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
