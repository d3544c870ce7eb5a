"""The documentation's plots, drawn from the recorded results in benchmarks/results/.

    pip install -e '.[bench]'
    python benchmarks/plots.py            # writes docs/images/*.png

Nothing is measured here: each plot reads figures a benchmark recorded (the throughput and
density tables as CSV, the service-class runs as `qos.py`'s JSON, the soak's plot as it is).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _rows(name: str) -> list[dict[str, str]]:
    with (RESULTS / name).open(newline="") as file:
        return list(csv.DictReader(file))


def throughput_vs_streams(out: Path) -> None:
    """vapipe end to end against its combined limit and the hand-written loop, per model."""
    rows = _rows("throughput.csv")
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(9, 3.4))
    series = [
        ("combined_limit_fps", "combined limit (decode + infer)", "#bbbbbb"),
        ("vapipe_e2e_fps", "vapipe end to end", "#1f77b4"),
        ("handwritten_fps", "hand-written loop", "#ff7f0e"),
    ]
    for ax, model in zip(axes, models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        streams = [r["streams"] for r in mine]
        width = 0.8 / len(series)
        for k, (key, label, color) in enumerate(series):
            xs = [i + (k - 1) * width for i in range(len(mine))]
            ax.bar(xs, [float(r[key]) for r in mine], width, label=label, color=color)
        ax.set_xticks(range(len(mine)), [f"{s} streams" for s in streams])
        ax.set_title(model, fontsize=10)
        ax.set_ylabel("frames/s")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Throughput on 2 CPU cores (AUTO → CPU, 4 requests)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def live_latency_with_batch(out: Path) -> None:
    """Live p95 latency alone and with a batch job beside it, `classes` against `fair`."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (name, title) in zip(
        axes,
        [("yolo11n.json", "YOLO11n INT8"), ("pvb.json", "person-vehicle-bike INT8")],
        strict=True,
    ):
        runs = json.loads((RESULTS / "qos" / name).read_text())
        bars = []
        for scheduling in ("classes", "fair"):
            for batch, label in ((False, "alone"), (True, "with batch")):
                p95 = [
                    r["live_p95_ms"]
                    for r in runs
                    if r["scheduling"] == scheduling and r["batch"] is batch
                ]
                bars.append((f"{scheduling}\n{label}", statistics.median(p95)))
        colors = ["#1f77b4", "#6baed6", "#d62728", "#fc9272"]
        ax.bar([b[0] for b in bars], [b[1] for b in bars], color=colors)
        for i, (_, value) in enumerate(bars):
            ax.annotate(f"{value:.0f}", (i, value), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("live p95 latency, ms (median of rounds)")
    fig.suptitle("4 live cameras, with and without a batch folder on the same device", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def camera_density(out: Path) -> None:
    """1080p25 cameras analysed at 5 fps that each system held in real time."""
    rows = _rows("density.csv")
    fig, ax = plt.subplots(figsize=(7, 3))
    names = [r["system"] for r in rows]
    held = [int(r["cameras_held"]) for r in rows]
    ax.barh(names, held, color=["#bbbbbb", "#1f77b4", "#ff7f0e", "#2ca02c"])
    for i, value in enumerate(held):
        ax.annotate(str(value), (value, i), va="center", ha="left", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("cameras held (1080p25, analysed at 5 fps, 2 cores)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    throughput_vs_streams(args.out / "throughput-vs-streams.png")
    live_latency_with_batch(args.out / "live-latency-with-batch.png")
    camera_density(args.out / "camera-density.png")
    shutil.copyfile(RESULTS / "soak" / "soak.png", args.out / "soak.png")
    for path in sorted(args.out.glob("*.png")):
        print(path.relative_to(ROOT), f"{path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
