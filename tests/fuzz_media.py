"""A folder of damaged and odd video files, made with ffmpeg from the shared clips.

`make_fuzz_folder(src, folder)` writes one file per input kind below (several for the truncated
and bit-flipped kinds) and returns {file name: kind}. Every damage is seeded: the same files on
every run.
"""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

TRUNCATIONS = 20  # offsets at which the valid clip is cut
BIT_FLIP_FILES = 6
BIT_FLIPS = 16  # per file, anywhere in its first 64 KB (mostly in frames)
HEADER_FLIP_FILES = 8
HEADER_FLIPS = 4  # per file, in the index before the frames (1.2 KB here)
CLIP_FRAMES = 40


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *map(str, args)], check=True)


def h264_clip(src: Path, dst: Path, frames: int, *, start_s: float = 15.6, vf: str = "") -> Path:
    """`frames` frames of `src` from `start_s`, as H.264 (a keyframe every 20 frames), with
    the index at the front for MP4 (`+faststart`: a cut file still opens)."""
    ffmpeg(
        "-ss", start_s, "-i", src, "-frames:v", frames, "-an", *(["-vf", vf] if vf else []),
        "-c:v", "libx264", "-preset", "veryfast", "-g", "20", "-pix_fmt", "yuv420p",
        *(["-movflags", "+faststart"] if dst.suffix == ".mp4" else []), dst,
    )  # fmt: skip
    return dst


def make_fuzz_folder(src: Path, folder: Path, work: Path) -> dict[str, str]:
    """Writes the damaged and odd files into `folder` (intermediate files into `work`)."""
    folder.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}
    rng = random.Random(17)

    def add(name: str, kind: str) -> Path:
        kinds[name] = kind
        return folder / name

    good = h264_clip(src, work / "good.mp4", CLIP_FRAMES)
    data = good.read_bytes()
    for i in range(TRUNCATIONS):  # from just past the header to just short of the end
        cut = round(len(data) * (i + 1) / (TRUNCATIONS + 1))
        add(f"truncated-{i:02d}.mp4", "valid clip truncated").write_bytes(data[:cut])
    header = data.find(b"mdat")  # the MP4 index (moov) comes first: +faststart
    for i in range(BIT_FLIP_FILES):
        damaged = bytearray(data)
        for _ in range(BIT_FLIPS):
            bit = rng.randrange(min(len(data), 65536) * 8)
            damaged[bit // 8] ^= 1 << (bit % 8)
        add(f"bitflips-{i}.mp4", "bit flips in the first 64 KB").write_bytes(bytes(damaged))
    for i in range(HEADER_FLIP_FILES):
        damaged = bytearray(data)
        for _ in range(HEADER_FLIPS):
            bit = rng.randrange(header * 8)
            damaged[bit // 8] ^= 1 << (bit % 8)
        kind = "bit flips in the first 64 KB, all in the MP4 index"
        add(f"header-bitflips-{i}.mp4", kind).write_bytes(bytes(damaged))
    add("random-bytes.mp4", "random bytes, video extension").write_bytes(rng.randbytes(200_000))
    add("zero-length.mp4", "zero-length file").write_bytes(b"")

    # 768x432 then 640x360: two MPEG-TS segments back to back, as a recorder writes them when
    # the camera is reconfigured.
    first = h264_clip(src, work / "first.ts", 20)
    second = h264_clip(src, work / "second.ts", 20, start_s=22.0, vf="scale=640:360")
    add("resolution-change.ts", "resolution changes halfway").write_bytes(
        first.read_bytes() + second.read_bytes()
    )
    h264_clip(src, add("one-frame.mp4", "1-frame file"), 1)
    h264_clip(src, add("4k.mp4", "4K clip (3840x2160)"), 5, vf="scale=3840:2160")
    ffmpeg(
        "-ss", 15.6, "-i", src, "-frames:v", 10, "-an", "-pix_fmt", "gray", "-c:v", "ffv1",
        add("grayscale.mkv", "grayscale clip"),
    )  # fmt: skip
    zero_fps_avi(src, work / "mjpeg.avi", add("zero-fps.avi", "0 fps header (AVI)"))
    zero_timescale_mp4(good, add("zero-timescale.mp4", "0 fps header (MP4 time scale 0)"))
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
        add("audio-only.mp4", "audio-only file"),
    )  # fmt: skip
    return kinds


def zero_fps_avi(src: Path, work: Path, dst: Path) -> Path:
    """An MJPEG AVI whose headers give 0 µs per frame and a frame rate of 0/0."""
    ffmpeg("-ss", 15.6, "-i", src, "-frames:v", 10, "-an", "-c:v", "mjpeg", "-q:v", 5, work)
    data = bytearray(work.read_bytes())
    avih = data.find(b"avih")
    struct.pack_into("<I", data, avih + 8, 0)  # dwMicroSecPerFrame
    strh = data.find(b"strh")
    struct.pack_into("<II", data, strh + 8 + 20, 0, 0)  # dwScale, dwRate
    dst.write_bytes(bytes(data))
    return dst


def zero_timescale_mp4(good: Path, dst: Path) -> Path:
    """`good` with its video track's time scale (ticks per second) set to 0."""
    data = bytearray(good.read_bytes())
    mdhd = data.find(b"mdhd")
    version = data[mdhd + 4]
    struct.pack_into(">I", data, mdhd + 4 + 4 + (16 if version == 1 else 8), 0)
    dst.write_bytes(bytes(data))
    return dst
