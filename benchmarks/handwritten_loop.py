"""The good hand-written loop vapipe is compared with (issue: performance).

Decoder threads (one per stream, `cv2.resize` to the model size) -> one `queue.Queue` ->
the main thread feeding an `AsyncInferQueue` (THROUGHPUT hint, optimal requests) whose
callback copies the output. No ordering, no sinks: an upper bound for a simple app.

    python benchmarks/handwritten_loop.py --model M.xml --streams 4 --seconds 10 a.mp4 b.mp4
"""

from __future__ import annotations

import argparse
import queue
import threading
import time

import cv2
import numpy as np
import openvino as ov


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--model", required=True, help="IR .xml")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    core = ov.Core()
    model = core.read_model(args.model)
    _, _, height, width = model.inputs[0].shape
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    pool = ov.AsyncInferQueue(compiled)
    done = [0]

    def on_done(request: ov.InferRequest, _: object) -> None:
        request.get_output_tensor(0).data.copy()
        done[0] += 1

    pool.set_callback(on_done)
    frames: queue.Queue = queue.Queue(maxsize=2 * len(pool))
    stop = threading.Event()

    def decode(path: str) -> None:
        capture = cv2.VideoCapture(path)
        while not stop.is_set():
            ok, image = capture.read()
            if not ok:
                break
            blob = cv2.resize(image, (width, height)).transpose(2, 0, 1)[None]
            frames.put(blob.astype(np.float32))
        frames.put(None)

    videos = [args.videos[i % len(args.videos)] for i in range(args.streams)]
    threads = [threading.Thread(target=decode, args=(v,), daemon=True) for v in videos]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    ended = 0
    while ended < len(threads):
        item = frames.get()
        if item is None:
            ended += 1
            continue
        pool.start_async(item)
        if time.perf_counter() - started > args.seconds:
            stop.set()
    pool.wait_all()
    elapsed = time.perf_counter() - started
    print(f"hand-written loop: {done[0]} frames, {done[0] / elapsed:.1f} fps, {len(pool)} requests")
    del compiled  # the pool is then the last owner: see pipeline/runtime.py
    del pool


if __name__ == "__main__":
    main()
