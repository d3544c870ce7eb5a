"""Requests per second of the service's API: today's FastAPI/uvicorn server vs the previous
http.server one (taken from git, `--old-rev`), on `/api/streams` and `/metrics`, with the
same in-memory controller (8 cameras) and metrics. Prints each rate and the ratio new/old.

    PYTHONPATH=$PWD python3 benchmarks/api_rps.py [--seconds 4] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import threading
import time
import types

from pipeline.apps.serve.api import ApiServer
from pipeline.apps.serve.config import HttpConfig, parse_camera
from pipeline.apps.serve.metrics import EngineFigures, ServiceMetrics, StreamFigures
from tests.test_serve_api import MemoryController


def _old_server_class(rev: str):
    """The http.server ApiServer of `rev`, loaded from git beside today's modules."""
    guard = types.ModuleType("old_http_guard")

    def show(path: str) -> str:
        return subprocess.check_output(["git", "show", f"{rev}:{path}"]).decode()

    guard_code = show("pipeline/apps/serve/http_guard.py")
    exec(compile(guard_code, "old_http_guard.py", "exec"), guard.__dict__)
    sys.modules["old_http_guard"] = guard
    api_code = show("pipeline/apps/serve/api.py")
    api_code = api_code.replace("pipeline.apps.serve.http_guard", "old_http_guard")
    api = types.ModuleType("old_api")
    sys.modules["old_api"] = api
    exec(compile(api_code, "old_api.py", "exec"), api.__dict__)
    return api.ApiServer


def _server(cls):
    controller = MemoryController()
    for i in range(8):
        controller.add_stream(parse_camera(f"cam{i}", {"source": f"rtsp://u:p@10.0.0.{i}/s"}))
    metrics = ServiceMetrics()
    figures = tuple(StreamFigures(f"cam{i}", True, 10, 7, 2, 1, 3, "live") for i in range(8))
    metrics.read_engine(lambda: EngineFigures(figures, 2, 4))
    return cls(controller, metrics, HttpConfig(bind=("127.0.0.1", 0))).start()


def _rate(server, path: str, seconds: float, clients: int, keep_alive: bool) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = None
        while time.monotonic() < stop:
            if connection is None:
                connection = http.client.HTTPConnection(*server.address, timeout=10)
            connection.request("GET", path)
            reply = connection.getresponse()
            reply.read()
            assert reply.status == 200, reply.status
            done[index] += 1
            if not keep_alive or reply.will_close:
                connection.close()
                connection = None

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--old-rev", default="dd7bd6f")
    args = parser.parse_args()
    old, new = _server(_old_server_class(args.old_rev)), _server(ApiServer)
    try:
        for path in ("/api/streams", "/metrics"):
            before = _rate(old, path, args.seconds, args.clients, keep_alive=False)
            fresh = _rate(new, path, args.seconds, args.clients, keep_alive=False)
            kept = _rate(new, path, args.seconds, args.clients, keep_alive=True)
            print(
                f"{path:14s} old {before:7.0f}/s   new {fresh:7.0f}/s"
                f" (ratio {fresh / before:.2f})   new keep-alive {kept:7.0f}/s"
                f" (ratio {kept / before:.2f})"
            )
    finally:
        old.close()
        new.close()


if __name__ == "__main__":
    main()
