"""Watch live cameras with vapipe's Python API: print each stream's state every few seconds.

    python samples/watch_cameras.py rtsp://user:pass@10.0.0.5/stream1 door=rtsp://10.0.0.6/main \
        --model ../shared/models/person-vehicle-bike-detection-2000/FP16-INT8 --max-fps 5

Streams reconnect on their own; Ctrl-C stops cleanly and prints the summary.
"""

from __future__ import annotations

import argparse

from pipeline import LiveOptions, Pipeline, Progress, StreamOptions, VapipeError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="rtsp:// or http:// URL, camera, NAME=URL")
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-fps", type=float, help="analyse at most F frames/s per camera")
    parser.add_argument("--duration", type=float, help="stop after SECONDS")
    args = parser.parse_args()
    options = StreamOptions(max_fps=args.max_fps, live=LiveOptions(read_timeout=3.0))
    try:
        with Pipeline(args.sources, args.model, streams=options) as pipeline:

            def show(progress: Progress) -> None:
                states = pipeline.stream_status()
                print(
                    f"{progress.processed} frames, {progress.dropped} dropped | "
                    + ", ".join(
                        f"{name}: {s.state.value} ({s.reconnects} reconnects)"
                        for name, s in states.items()
                    )
                )

            summary = pipeline.run(on_tick=show, tick_seconds=5.0, duration=args.duration)
    except VapipeError as error:
        print(f"error: {error}")
        return 2
    print(summary.format_text())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
