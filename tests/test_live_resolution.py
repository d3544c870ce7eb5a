"""A camera reconfigured to another resolution: after the reconnect, results are in the new
frame's pixels (a real RTSP server on loopback, restarted serving the other size)."""

from __future__ import annotations

import threading
import time

import numpy as np
from conftest import CAR, SSD_LABELS, SSD_XML
from fuzz_media import h264_clip
from reference import ssd_reference
from rtsp import RtspServer, free_port, looped

from pipeline import Pipeline, Result
from sources import Backoff, LiveOptions, LiveSource

FAST = LiveOptions(open_timeout=3.0, read_timeout=2.0, backoff=Backoff(initial=0.5, cap=2.0))


class Recorder:
    """Each result's frame index, image size and detections; the images after the switch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[int, tuple[int, int], list[dict]]] = []
        self.small: list[tuple[np.ndarray, list[dict]]] = []

    def __call__(self, result: Result) -> None:
        image = result.frame.image
        detections = result.to_dict()["detections"]
        with self.lock:
            self.rows.append((result.frame.index, (image.shape[1], image.shape[0]), detections))
            if image.shape[1] == 640:
                self.small.append((image, detections))

    def count(self, width: int) -> int:
        with self.lock:
            return sum(1 for _, size, _ in self.rows if size[0] == width)


def test_a_camera_restarted_at_another_resolution_continues_with_boxes_in_its_new_pixels(
    tmp_path,
):
    large = looped(CAR, tmp_path / "large.mp4", 3)  # 768x432
    small = looped(
        h264_clip(CAR, tmp_path / "small-once.mp4", 150, vf="scale=640:360"),
        tmp_path / "small.mp4",
        4,
    )  # 640x360, with cars from the first frame
    port = free_port()
    server = RtspServer({"cam": large}, port).start()
    recorder = Recorder()
    source = LiveSource(server.url("cam"), "cam", FAST)
    try:
        with Pipeline([source], SSD_XML, labels=SSD_LABELS, sinks=[recorder]) as pipeline:

            def script() -> None:
                nonlocal server
                deadline = time.monotonic() + 60
                while recorder.count(768) < 15 and time.monotonic() < deadline:
                    time.sleep(0.05)
                server.kill()
                server = RtspServer({"cam": small}, port).start()  # reconfigured
                while recorder.count(640) < 30 and time.monotonic() < deadline + 60:
                    time.sleep(0.1)
                pipeline.stop()

            driver = threading.Thread(target=script)
            driver.start()
            summary = pipeline.run(duration=180)
            driver.join()
    finally:
        server.kill()
    stream = summary.streams[0]
    assert stream.reconnects >= 1, stream
    sizes = [size for _, size, _ in recorder.rows]
    switch = sizes.index((640, 360))
    assert set(sizes[:switch]) == {(768, 432)} and set(sizes[switch:]) == {(640, 360)}
    indices = [index for index, _, _ in recorder.rows]
    assert indices == sorted(set(indices)), "in order, none twice, across the reconnect"
    with_boxes = [(image, got) for image, got in recorder.small if got]
    assert len(with_boxes) >= 10, "the new stream's frames show cars"
    for _, got in recorder.small:
        for detection in got:
            x1, y1, x2, y2 = detection["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360, detection
    for image, got in with_boxes[:5]:  # the same boxes as a direct run on the new frame
        want = sorted(ssd_reference(SSD_XML, image, conf=0.5), key=lambda row: -row[1])
        got = sorted(got, key=lambda d: -d["score"])
        assert len(got) == len(want)
        for g, (class_id, score, *box) in zip(got, want, strict=True):
            assert g["class_id"] == class_id and abs(g["score"] - score) < 1e-3
            assert np.allclose(g["box"], box, atol=1.0), (g["box"], box)
