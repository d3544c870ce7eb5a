"""Joining a Ray cluster, or starting one here, and finding its nodes (the optional extra)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pipeline.errors import VapipeError

log = logging.getLogger(__name__)

WORKER_NICENESS = "RAY_worker_niceness"  # read by each node's raylet when it starts
INSTALL_HINT = "pip install 'vapipe[ray]' (or: pip install 'ray>=2.40')"


class ClusterError(VapipeError):
    """The cluster cannot be used: Ray missing, unreachable, or without a node to work on."""


def import_ray(option: str = "--ray") -> ModuleType:
    """Ray, or a one-line error saying that `option` needs it and how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"{option} needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None) -> ModuleType:
    """Join the cluster at `address` (`auto`, `HOST:PORT` or `ray://HOST:PORT`), or start a
    Ray instance on this machine when it is None. Returns the `ray` module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    handlers = _signal_handlers()
    try:
        if address is None:
            # Ray runs its workers at nice 15; here they are the job, not background work (on a
            # shared machine, niced workers got 0.56 of the local batch's rate;
            # see docs/guide/cluster.md).
            os.environ.setdefault(WORKER_NICENESS, "0")
            ray.init(include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = address or "this machine"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise ClusterError(
            f"cannot join the Ray cluster at {where} ({first_line}); check the address, or "
            "start one with `ray start --head`"
        ) from None
    finally:
        for signum, handler in handlers.items():  # Ray's SIGTERM handler exits at once (15)
            signal.signal(signum, handler)
    return ray


def _signal_handlers() -> dict[int, Any]:
    """vapipe's SIGTERM and SIGINT handlers (which stop the work and finish the outputs), to
    put back after `ray.init` replaced them; none off the main thread (Ray leaves them)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}


@dataclass(frozen=True)
class Node:
    """A live node of the cluster that can run workers."""

    node_id: str
    name: str  # shown in reports: its address and the start of its id
    cpus: int
    address: str = ""  # its machine's address


def worker_nodes(ray: ModuleType) -> list[Node]:
    """The live nodes that declare CPUs, in a stable order."""
    nodes = []
    for info in ray.nodes():
        cpus = int(info.get("Resources", {}).get("CPU", 0))
        if info.get("Alive") and cpus > 0:
            node_id = info["NodeID"]
            address = info["NodeManagerAddress"]
            nodes.append(Node(node_id, node_label(address, node_id), cpus, address))
    if not nodes:
        raise ClusterError("the Ray cluster has no live node with CPUs; start one")
    return sorted(nodes, key=lambda node: node.name)


def node_label(address: str, node_id: str) -> str:
    return f"{address}/{node_id[:8]}"


def on_node(node_id: str) -> Any:
    """The scheduling strategy that places an actor on that node and nowhere else."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def spread(nodes: list[Node], workers: int | None) -> list[Node]:
    """The node of each worker: one per node, or `workers` of them round-robin."""
    count = workers or len(nodes)
    return [nodes[i % len(nodes)] for i in range(count)]


def shared_machine_cores(workers: list[Node]) -> list[tuple[int, ...] | None]:
    """The cores each worker (given by its node, in order) keeps to when several nodes share
    its machine: the machine's cores split among those nodes by their declared CPUs, then a
    node's among its workers. None for a node alone on its machine (the OS and OpenVINO place
    its threads). On this machine, two 1-CPU nodes each kept to a core ran a batch as fast as
    one process on both cores (3.0-3.4 s against 3.2-3.5 s); left to the OS, 3.6-4.6 s."""
    hosts: dict[str, list[Node]] = {}
    for node in dict.fromkeys(workers):  # each node once, in order
        hosts.setdefault(node.address, []).append(node)
    first_core: dict[str, int] = {}
    for nodes in hosts.values():
        if len(nodes) > 1:
            core = 0
            for node in sorted(nodes, key=lambda n: n.name):
                first_core[node.node_id] = core
                core += node.cpus
    cores: list[tuple[int, ...] | None] = []
    started: dict[str, int] = {}  # workers given cores so far, by node
    for node in workers:
        if node.node_id not in first_core:
            cores.append(None)
            continue
        threads = max(1, node.cpus // workers.count(node))
        index = started.get(node.node_id, 0)
        started[node.node_id] = index + 1
        first = first_core[node.node_id] + (index * threads) % node.cpus
        cores.append(tuple(range(first, first + threads)))
    return cores
