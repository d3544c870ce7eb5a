"""What does Ray cost? `vapipe batch --ray` on a local cluster of 2 nodes with 1 CPU each
against the local `vapipe batch` (2 CPUs) on the same folder (issue 18: at least 0.9 of it).

Cuts the shared clips into short files, starts the two-node cluster on 127.0.0.1, then
alternates the two command lines `--rounds` times (a ratio of runs side by side is steadier
on a shared machine than one of runs minutes apart) and prints each round's processing rates
(frames over processing time, model loading excluded: the report's `fps`), wall times, and the
median ratio. Ray binds 127.0.0.1 only in a network namespace with nothing but loopback
(ray-project/ray#59110), so as root the script reruns itself under `unshare -n`.

    python benchmarks/cluster_vs_local.py --model MODEL [--labels L] [--files 24] [--frames 40]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from batch_vs_run import make_media  # noqa: E402

from pipeline.apps.cluster.connect import WORKER_NICENESS  # noqa: E402


def batch(folder: Path, out: Path, model_args: list[str], *ray: str) -> dict:
    """One `vapipe batch --force` run; its report."""
    command = [sys.executable, "-m", "pipeline", "batch", str(folder), "--out", str(out)]
    command += [*model_args, "--force", "--no-progress", *ray]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
    return json.loads((out / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels")
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.environ.get("VAPIPE_LOOPBACK_NAMESPACE") != "1" and os.geteuid() == 0:
        inner = f"ip link set lo up && exec {sys.executable} {' '.join(map(repr, sys.argv))}"
        env = {**os.environ, "VAPIPE_LOOPBACK_NAMESPACE": "1"}
        sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", inner], env=env).returncode)

    import ray
    from ray.cluster_utils import Cluster

    model_args = ["--model", args.model] + (["--labels", args.labels] if args.labels else [])
    work = Path(tempfile.mkdtemp(prefix="vapipe-cluster-bench-"))
    os.environ[WORKER_NICENESS] = "0"  # as vapipe's own local Ray: workers not niced
    head = dict(num_cpus=1, include_dashboard=False)
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        folder, _ = make_media(work, args.files, args.frames)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(f"{args.files} files x {args.frames} frames; cluster of 2 nodes x 1 CPU")
        print("round  local fps  cluster fps  ratio  | local wall s  cluster wall s")
        ratios = []
        for i in range(args.rounds):
            local = batch(folder, work / "local", model_args)
            on_ray = batch(folder, work / "ray", model_args, "--ray", cluster.address)
            nodes = {row["node"] for row in on_ray["files"]}
            assert len(nodes) == 2, f"both nodes worked: {nodes}"
            ratios.append(on_ray["fps"] / local["fps"])
            print(
                f"{i + 1:>5}  {local['fps']:>9.1f}  {on_ray['fps']:>11.1f}  {ratios[-1]:.3f}  "
                f"| {local['wall_seconds']:>12.1f}  {on_ray['wall_seconds']:>14.1f}"
            )
        print(f"median cluster / local: {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
