"""Count the vehicles that cross a line, each one once, in each direction (vapipe's Python API).

    python samples/count_vehicles.py ../shared/videos/car-detection.mp4 \\
        --model ../shared/models/person-vehicle-bike-detection-2000/FP16-INT8/person-vehicle-bike-detection-2000.xml \\
        --labels vehicle,person,bike

Every vehicle is followed over time (a track), so it counts once however many frames see
it. The line runs from (x1, y1) to (x2, y2), in fractions of the frame's width and height
(default: across the middle, left to right); `in` is a crossing from its right to its left
(for that default line: upwards), `out` the other way. Each crossing is printed as it
happens, then the totals per stream.
"""  # noqa: E501

from __future__ import annotations

import argparse

from pipeline import (
    AnalyticsOptions,
    CallbackSink,
    Event,
    JsonlSink,
    Pipeline,
    VapipeError,
    parse_line,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels", default="vehicle,person,bike", help="the model's classes")
    parser.add_argument("--count", default="vehicle", help="the class to count (vehicle)")
    parser.add_argument("--line", default="0,0.5,1,0.5", metavar="x1,y1,x2,y2")
    parser.add_argument("--device", default="AUTO")
    parser.add_argument("--out", help="also write JSON Lines (detections with track ids, events)")
    args = parser.parse_args()

    def on_event(event: Event) -> None:  # called in order, per stream
        if event.type == "line_cross" and event.label == args.count:
            print(f"{event.stream}: {event.label} #{event.track_id} crossed {event.direction} "
                  f"at {event.pts_ms / 1000:.1f} s")  # fmt: skip

    sinks = [CallbackSink(on_event=on_event)]
    if args.out:
        from pipeline import EventsJsonlSink

        sinks += [JsonlSink(args.out), EventsJsonlSink(args.out)]
    try:
        analytics = AnalyticsOptions(lines=(parse_line(f"line={args.line}"),))
        with Pipeline(
            args.sources, args.model, device=args.device, labels=args.labels, sinks=sinks,
            analytics=analytics,
        ) as pipeline:  # fmt: skip
            summary = pipeline.run()
    except VapipeError as error:
        print(f"error: {error}")
        return 2
    for stream in summary.streams:
        counts = stream.lines["line"]["by_label"].get(args.count, {"in": 0, "out": 0})
        crossed = counts["in"] + counts["out"]
        print(f"{stream.name}: {crossed} {args.count}s crossed the line ({counts['in']} in, "
              f"{counts['out']} out); {stream.tracks} tracks in all")  # fmt: skip
    print(f"{summary.total_fps:.1f} fps on {', '.join(summary.execution_devices)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
