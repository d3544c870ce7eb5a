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
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from batch_vs_run import make_media  # noqa: E402

from pipeline.apps.cluster.connect import WORKER_NICENESS  # noqa: E402


class CpuSampler:
    """CPU seconds used by this process's descendants (the Ray nodes' processes: raylets, GCS,
    worker actors), sampled from /proc every 0.2 s so that actors killed at the end of a run
    still count (up to their last sample)."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], int] = {}  # (pid, start time) -> CPU ticks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            stats = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                        stats[int(entry.name)] = fields  # state, ppid, ...
            children: dict[int, list[int]] = {}
            for pid, fields in stats.items():
                children.setdefault(int(fields[1]), []).append(pid)
            todo = list(children.get(os.getpid(), []))
            while todo:
                pid = todo.pop()
                todo += children.get(pid, [])
                fields = stats[pid]
                self._last[(pid, fields[19])] = int(fields[11]) + int(fields[12])

    def seconds(self) -> float:
        time.sleep(0.3)  # one more sample
        return sum(self._last.values()) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._stop.set()


def batch(folder: Path, out: Path, model_args: list[str], *ray: str) -> tuple[dict, float]:
    """One `vapipe batch --force` run: its report, and the CPU seconds of the command."""
    command = [sys.executable, "-m", "pipeline", "batch", str(folder), "--out", str(out)]
    command += [*model_args, "--force", "--no-progress", *ray]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads((out / "report.json").read_text()), cpu


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
        print(
            "round  local fps  cluster fps  ratio  | wall s local, cluster "
            "| CPU ms/frame local, cluster (all Ray processes counted)"
        )
        ratios, cpu_ratios = [], []
        sampler = CpuSampler()
        for i in range(args.rounds):
            local, local_cpu = batch(folder, work / "local", model_args)
            ray_before = sampler.seconds()
            on_ray, driver_cpu = batch(folder, work / "ray", model_args, "--ray", cluster.address)
            ray_cpu = driver_cpu + sampler.seconds() - ray_before
            nodes = {row["node"] for row in on_ray["files"]}
            assert len(nodes) == 2, f"both nodes worked: {nodes}"
            ratios.append(on_ray["fps"] / local["fps"])
            local_ms = 1000 * local_cpu / local["frames"]
            ray_ms = 1000 * ray_cpu / on_ray["frames"]
            cpu_ratios.append(local_ms / ray_ms)
            print(
                f"{i + 1:>5}  {local['fps']:>9.1f}  {on_ray['fps']:>11.1f}  {ratios[-1]:.3f}  "
                f"| {local['wall_seconds']:>5.1f}, {on_ray['wall_seconds']:>5.1f} "
                f"| {local_ms:.2f}, {ray_ms:.2f}"
            )
        sampler.close()
        print(f"median cluster / local rate: {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); CPU per frame local / cluster: "
              f"{statistics.median(cpu_ratios):.3f} "
              f"(min {min(cpu_ratios):.3f}, max {max(cpu_ratios):.3f})")  # fmt: skip
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
