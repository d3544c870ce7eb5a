"""One slow sink beside three normal streams: do the other three keep their throughput?
(issue 24: results off the inference callback)

Four file streams of one clip through the Python API, one model. In the `slow` run, one
stream's sink is a callback that sleeps `--sleep` seconds per result (an HTTP post, a database
insert); in the `plain` run, no sink sleeps. Each run stops once the three other streams have
ended (the slow one would take frames x sleep). Prints, per round, the three streams' mean fps
in each run and their ratio slow / plain (1.0: the slow sink costs the others nothing); runs
alternate, `--rounds` times, and the median ratio is printed last.

    python benchmarks/slow_sink.py [--model XML] [--clip MP4] [--labels L] [--sleep 0.2]
        [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pipeline import Pipeline, Result

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODEL = SHARED / "models/person-vehicle-bike-detection-2000/FP16-INT8"
CLIP = SHARED / "videos/car-detection.mp4"


def run(model: Path, clip: Path, labels: str, sleep: float) -> float:
    """The three normal streams' mean fps, with the fourth's sink sleeping `sleep` s."""
    pipeline: Pipeline

    def sink(result: Result) -> None:
        if result.stream == "slow" and sleep:
            time.sleep(sleep)

    others = {"a", "b", "c"}
    ended: dict[str, float] = {}

    def on_end(summary) -> None:
        if summary.name in others:
            ended[summary.name] = summary.fps
            if len(ended) == len(others):
                pipeline.stop()  # the slow one would take frames x sleep

    sources = [f"{name}={clip}" for name in ("slow", "a", "b", "c")]
    with Pipeline(sources, model, sinks=[sink], labels=labels, device="CPU") as pipeline:
        pipeline.run(on_stream_end=on_end)
    return statistics.mean(ended.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=next(MODEL.glob("*.xml"), MODEL))
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--labels", default="vehicle,person,bike")
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ratios = []
    for round_ in range(1, args.rounds + 1):
        plain = run(args.model, args.clip, args.labels, 0.0)
        slow = run(args.model, args.clip, args.labels, args.sleep)
        ratios.append(slow / plain)
        print(f"round {round_}: others {slow:.1f} fps beside the slow sink, {plain:.1f} fps "
              f"without: ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
    print(f"median ratio {statistics.median(ratios):.2f} over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
