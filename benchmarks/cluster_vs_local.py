"""What does Ray cost? `vapipe batch --ray` on a local cluster of 2 nodes with 1 CPU each
against the local `vapipe batch` (2 CPUs) on the same folder (issue 18: at least 0.9 of it).

Cuts the shared clips into short files, starts the two-node cluster on 127.0.0.1, then
alternates the two command lines `--rounds` times (a ratio of runs side by side is steadier
on a shared machine than one of runs minutes apart) and prints each round's processing rates
(frames over processing time, model loading excluded: the report's `fps`), wall times, and the
median ratio; then the CPU per frame of both (every Ray process counted, by role), also with a
run's fixed cost (process and worker start, model compile) taken off: the difference with a run
on a quarter of the files, which predicts the rate ratio of a long run on an idle machine.
Ray binds 127.0.0.1 only in a network namespace with nothing but loopback
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
    agents, worker actors), sampled from /proc every 0.2 s so that actors killed at the end of a
    run still count (up to their last sample), with each process's role (`role_of`)."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], int] = {}  # (pid, start time) -> CPU ticks
        self._roles: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()
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
                key = (pid, fields[19])
                with contextlib.suppress(OSError), self._lock:
                    self._last[key] = int(fields[11]) + int(fields[12])
                    if cmdline := Path(f"/proc/{pid}/cmdline").read_bytes():  # none once exited
                        self._roles[key] = role_of(cmdline)

    def seconds(self) -> dict[str, float]:
        """CPU seconds so far by role."""
        time.sleep(0.3)  # one more sample
        by_role: dict[str, float] = {}
        with self._lock:
            for key, ticks in self._last.items():
                role = self._roles.get(key, "other")
                by_role[role] = by_role.get(role, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
        return by_role

    def close(self) -> None:
        self._stop.set()


def role_of(cmdline: bytes) -> str:
    """A Ray process's role from its command line: `ray::Name` for workers (`ray::IDLE` for
    a worker without a task yet), the daemon's name (raylet, gcs_server, dashboard, ...)."""
    args = cmdline.decode(errors="replace").split("\0")
    if args[0].startswith("ray::"):
        return args[0].split(".")[0].split()[0]
    for arg in args[:3]:
        name = Path(arg).name
        if name in ("raylet", "gcs_server"):
            return name
        if name.endswith(".py"):
            return name.removesuffix(".py")
    if "pipeline" in args and "batch" in args:
        return "driver"
    return Path(args[0]).name or "other"


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
        folder, _ = make_media(work / "full", args.files, args.frames)
        small, _ = make_media(work / "small", max(2, args.files // 4), args.frames)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        sampler = CpuSampler()

        def on_cluster(folder: Path) -> tuple[dict, dict[str, float]]:
            """A `batch --ray` run: its report, and the CPU seconds of each process role."""
            before = sampler.seconds()
            report, driver_cpu = batch(folder, work / "ray", model_args, "--ray", cluster.address)
            after = sampler.seconds()
            used = {role: after[role] - before.get(role, 0.0) for role in after}
            used["driver"] = driver_cpu  # exact (its rusage), not sampled
            return report, used

        print(f"{args.files} files x {args.frames} frames; cluster of 2 nodes x 1 CPU")
        print(
            "round  local fps  cluster fps  ratio  | wall s local, cluster "
            "| CPU ms/frame local, cluster (all Ray processes) | same, startup excluded"
        )
        ratios, cpu_ratios, marginal_ratios = [], [], []
        roles: dict[str, list[float]] = {}  # CPU ms per frame of each Ray process role
        for i in range(args.rounds):
            local, local_cpu = batch(folder, work / "local", model_args)
            on_ray, used = on_cluster(folder)
            nodes = {row["node"] for row in on_ray["files"]}
            assert len(nodes) == 2, f"both nodes worked: {nodes}"
            # The small folder's run: what a run costs besides its frames (process and Ray
            # worker start, model compile), taken off to get the CPU per frame of a long run.
            _, local_small_cpu = batch(small, work / "local", model_args)
            ray_small, used_small = on_cluster(small)
            frames = on_ray["frames"] - ray_small["frames"]
            ratios.append(on_ray["fps"] / local["fps"])
            local_ms = 1000 * local_cpu / local["frames"]
            ray_ms = 1000 * sum(used.values()) / on_ray["frames"]
            cpu_ratios.append(local_ms / ray_ms)
            local_marginal = 1000 * (local_cpu - local_small_cpu) / frames
            ray_marginal = 1000 * (sum(used.values()) - sum(used_small.values())) / frames
            marginal_ratios.append(local_marginal / ray_marginal)
            for role, seconds in used.items():
                roles.setdefault(role, []).append(1000 * seconds / on_ray["frames"])
            print(
                f"{i + 1:>5}  {local['fps']:>9.1f}  {on_ray['fps']:>11.1f}  {ratios[-1]:.3f}  "
                f"| {local['wall_seconds']:>5.1f}, {on_ray['wall_seconds']:>5.1f} "
                f"| {local_ms:.2f}, {ray_ms:.2f} | {local_marginal:.2f}, {ray_marginal:.2f}"
            )
        sampler.close()
        for name, values in [
            ("cluster / local rate", ratios),
            ("CPU per frame local / cluster", cpu_ratios),
            ("the same, startup excluded", marginal_ratios),
        ]:
            print(f"median {name}: {statistics.median(values):.3f} "
                  f"(min {min(values):.3f}, max {max(values):.3f})")  # fmt: skip
        print("cluster CPU ms per frame by process (median over rounds):")
        for role, values in sorted(roles.items(), key=lambda item: -statistics.median(item[1])):
            if (median := statistics.median(values)) >= 0.005:
                print(f"  {role:<24} {median:6.2f}")
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
