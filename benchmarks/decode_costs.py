"""Where a sampled 1080p camera's decode time goes: CPU time per frame of each step and option.

One stream, one thread, CPU time (not wall time: the machine is shared, and CPU time per frame
hardly changes with the others' load). Uses the density benchmark's clips (made with ffmpeg
from the shared car clip) plus a variant with B-frames, for FFmpeg's frame skipping:

- OpenCV: `read()` for every frame, `grab()` alone, `grab()` with `retrieve()` for 1 in 5;
  FFmpeg's `skip_frame` through `OPENCV_FFMPEG_CAPTURE_OPTIONS=avdiscard;nonref|nonkey`.
- resizing a 1080p frame to the model input (256x256) with INTER_LINEAR and INTER_AREA.
- PyAV (if installed): decoding alone, with BGR conversion, converting 1 in 5 straight to the
  model size, and with the deblocking filter skipped (`skip_loop_filter`), whose effect on
  person-vehicle-bike detections is measured too.
- vapipe's own `FileSource` sampled 1 in 5, with each `DecoderOptions` (OpenCV, PyAV,
  `skip_nonref`, without deblocking), on the clips with and without B-frames.

    python benchmarks/decode_costs.py [--model person-vehicle-bike-detection-2000.xml]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from density import SOURCE_CLIP, make_clip  # also puts vapipe's packages on the path

from sources import DecoderOptions, FileSource

EVERY = 5
INPUT = (256, 256)
NO_DEBLOCKING = {"skip_loop_filter": "all"}


def cpu_ms_per_frame(decode: Callable[[], int]) -> float:
    started = time.process_time()
    frames = decode()
    return (time.process_time() - started) / frames * 1000


def opencv(path: Path, mode: str) -> Callable[[], int]:
    def decode() -> int:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        frames = 0
        while capture.grab():
            if mode == "read" or (mode == "sampled" and frames % EVERY == 0):
                capture.retrieve()
            frames += 1
        capture.release()
        return frames

    return decode


def with_capture_options(options: str, decode: Callable[[], int], total: int) -> float:
    """CPU ms per source frame with OpenCV's FFmpeg options set (read at each opening)."""
    saved = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
    try:
        started = time.process_time()
        decode()
        return (time.process_time() - started) / total * 1000
    finally:
        if saved is None:
            del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]
        else:
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = saved


def pyav_frames(path: Path, options: dict[str, str]) -> Iterator:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        stream.codec_context.options = dict(options)
        yield from container.decode(stream)


def pyav(path: Path, mode: str, options: dict[str, str] | None = None) -> Callable[[], int]:
    def decode() -> int:
        frames = 0
        for frame in pyav_frames(path, options or {}):
            if mode == "bgr":
                frame.to_ndarray(format="bgr24")
            elif mode == "sampled" and frames % EVERY == 0:
                cv2.resize(frame.to_ndarray(format="bgr24"), INPUT)
            elif mode == "sampled-to-input" and frames % EVERY == 0:
                frame.to_ndarray(width=INPUT[0], height=INPUT[1], format="bgr24")
            frames += 1
        return frames

    return decode


def vapipe_file(path: Path, decoder: DecoderOptions, out: list[int]) -> Callable[[], int]:
    """vapipe's FileSource, sampled as the decoder thread does with `every 5`: every frame
    grabbed, 1 in 5 of those not left out undecoded retrieved. `out` gets the discarded."""

    def decode() -> int:
        source = FileSource(path, decoder=decoder)
        source.open()
        frames = kept = discarded = 0
        while source.grab() is not None:
            frames += 1
            if source.discarded:
                discarded += 1
                continue
            if kept % EVERY == 0:
                source.retrieve()
            kept += 1
        source.release()
        out[:] = [discarded]
        return frames

    return decode


def resize_ms(image: np.ndarray, interpolation: int, repeat: int = 50) -> float:
    started = time.process_time()
    for _ in range(repeat):
        cv2.resize(image, INPUT, interpolation=interpolation)
    return (time.process_time() - started) / repeat * 1000


def detections_agree(path: Path, model: str) -> str:
    """person-vehicle-bike detections on every 5th frame, deblocked vs not: how many match."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU")

    def detect(image: np.ndarray) -> np.ndarray:
        blob = cv2.resize(image, INPUT).transpose(2, 0, 1)[None].astype(np.float32)
        rows = compiled(blob)[0].reshape(-1, 7)
        return rows[rows[:, 2] > 0.5]

    def sampled(options: dict[str, str]) -> Iterator[np.ndarray]:
        for i, frame in enumerate(pyav_frames(path, options)):
            if i % EVERY == 0:
                yield frame.to_ndarray(format="bgr24")

    total = skipped = matched = 0
    for normal, fast in zip(sampled({}), sampled(NO_DEBLOCKING), strict=True):
        want, got = detect(normal), detect(fast)
        total, skipped = total + len(want), skipped + len(got)
        matched += sum(any(b[1] == a[1] and _iou(a[3:], b[3:]) >= 0.5 for b in got) for a in want)
    return f"{matched} of {total} detections found again (IoU >= 0.5, same class); {skipped} in all"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def b_frame_clip(clip: Path) -> Path:
    """The 1080p clip re-encoded with 2 non-reference B-frames between references."""
    path = clip.with_name(clip.stem + "-bframes.mp4")
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(SOURCE_CLIP),
             "-an", "-vf", "setpts=N/(25*TB),scale=1920:1080,format=yuv420p", "-r", "25",
             "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "2",
             "-x264-params", "b-pyramid=none", "-g", "50", "-b:v", "4M", str(path)],
            check=True,
        )  # fmt: skip
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="person-vehicle-bike IR .xml, for the detection check")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clip = make_clip(1080)
    rows = [
        ("OpenCV read() every frame", opencv(clip, "read")),
        ("OpenCV grab() every frame", opencv(clip, "grab")),
        ("OpenCV grab(), retrieve() 1 in 5", opencv(clip, "sampled")),
    ]
    try:
        import av  # noqa: F401

        rows += [
            ("PyAV decode only", pyav(clip, "none")),
            ("PyAV decode + BGR every frame", pyav(clip, "bgr")),
            ("PyAV decode, BGR + resize 1 in 5", pyav(clip, "sampled")),
            ("PyAV decode, 1 in 5 converted straight to 256x256", pyav(clip, "sampled-to-input")),
            ("PyAV decode only, deblocking skipped", pyav(clip, "none", NO_DEBLOCKING)),
        ]  # fmt: skip
    except ImportError:
        print("(PyAV not installed: pip install av, for its rows)")
    for name, decode in rows:
        print(f"{name:55s} {cpu_ms_per_frame(decode):5.2f} ms CPU per frame", flush=True)
    image = cv2.VideoCapture(str(clip)).read()[1]
    for name, flag in (("INTER_LINEAR", cv2.INTER_LINEAR), ("INTER_AREA", cv2.INTER_AREA)):
        print(f"{'resize 1920x1080 -> 256x256, ' + name:55s} {resize_ms(image, flag):5.2f} ms")
    b_clip = b_frame_clip(clip)
    total = int(cv2.VideoCapture(str(b_clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    for name, path in (("no B-frames", clip), ("B-frames", b_clip)):
        for option in ("", "avdiscard;nonref", "avdiscard;nonkey"):
            counted = opencv(path, "grab")
            frames = [0]

            def decode(counted=counted, frames=frames) -> int:
                frames[0] = counted()
                return frames[0]

            ms = with_capture_options(option or "rtsp_transport;tcp", decode, total)
            label = f"OpenCV grab(), {name}, {option or 'no skipping'}"
            print(f"{label:55s} {ms:5.2f} ms CPU per source frame ({frames[0]} of {total} out)")
    if "av" in sys.modules:
        for name, decoder in (
            ("OpenCV", DecoderOptions()),
            ("PyAV", DecoderOptions("pyav")),
            ("PyAV skip_nonref", DecoderOptions("pyav", skip_nonref=True)),
            ("PyAV skip_nonref, no deblocking",
             DecoderOptions("pyav", deblock=False, skip_nonref=True)),
        ):  # fmt: skip
            for clip_name, path in (("no B-frames", clip), ("B-frames", b_clip)):
                out = [0]
                ms = cpu_ms_per_frame(vapipe_file(path, decoder, out))
                label = f"vapipe FileSource {name}, {clip_name}, every 5"
                print(f"{label:55s} {ms:5.2f} ms CPU per source frame ({out[0]} left out)")
    if args.model:
        print("deblocking skipped:", detections_agree(clip, args.model))


if __name__ == "__main__":
    main()
