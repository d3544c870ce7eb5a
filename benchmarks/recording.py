"""What recording a camera costs next to decoding it: CPU seconds per camera-hour.

On a 1080p H.264 clip made with ffmpeg from the shared car clip (the density benchmark's), each
way runs in a child process that reads the file as fast as it can; CPU time (user + system) is
divided by the seconds of video handled, so the figures are per second of camera time and do
not depend on the machine's other load much. Ways:

- record-pyav: vapipe's `CameraRecorder` (PyAV demux, packets copied into 2 s..10 s fMP4
  segments, nothing decoded);
- record-ffmpeg: the ffmpeg CLI's segment muxer, stream copy (`-c copy -f segment`), as a
  supervised subprocess would run;
- decode-pyav: PyAV decoding every frame on one thread, with BGR conversion (`--decoder pyav`);
- decode-opencv: OpenCV's `read()` of every frame (vapipe's default decoder).

Prints each way's CPU per camera-hour and the ratio recorded ÷ decoded (goal <= 0.05).

    python benchmarks/recording.py [--loops 4]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from density import ROOT, make_clip  # also puts vapipe's packages on the path

RECORD_PYAV = """
import sys
from pathlib import Path
from pipeline.recording import CameraRecorder, RecordOptions
recorder = CameraRecorder("bench", sys.argv[1], Path(sys.argv[2]), RecordOptions(10.0))
assert recorder.start().join() and recorder.error is None and recorder.segments_written
"""
DECODE_PYAV = """
import sys, av
with av.open(sys.argv[1]) as c:
    s = c.streams.video[0]
    s.codec_context.thread_count = 1
    n = sum(1 for f in c.decode(s) if f.to_ndarray(format="bgr24") is not None)
assert n
"""
DECODE_OPENCV = """
import sys, cv2
cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
n = 0
while cap.read()[0]:
    n += 1
assert n
"""

# ffmpeg's segment muxer, stream copy; the input goes after the first four
FFMPEG_SEGMENTS = ["ffmpeg", "-loglevel", "error", "-y", "-c", "copy", "-an", "-f", "segment",
                   "-segment_time", "10", "-segment_format", "mp4",
                   "-reset_timestamps", "1"]  # fmt: skip


def child_cpu(args: list[str]) -> float:
    """CPU seconds (user + system) the child running `args` used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def seconds_of(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=4, help="clip repeats recorded (default 4)")
    args = parser.parse_args()
    clip = make_clip(1080)
    work = Path(tempfile.mkdtemp(prefix="vapipe-recording-"))
    looped = work / "looped.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(args.loops - 1), "-i",
         str(clip), "-c", "copy", "-an", str(looped)], check=True,
    )  # fmt: skip
    py = sys.executable
    ways = {  # command, the video it handles
        "record-pyav": ([py, "-c", RECORD_PYAV, str(looped), str(work / "pyav")], looped),
        "record-ffmpeg": (
            [
                *FFMPEG_SEGMENTS[:4],
                "-i",
                str(looped),
                *FFMPEG_SEGMENTS[4:],
                str(work / "ffmpeg-%03d.mp4"),
            ],
            looped,
        ),
        "decode-pyav": ([py, "-c", DECODE_PYAV, str(clip)], clip),
        "decode-opencv": ([py, "-c", DECODE_OPENCV, str(clip)], clip),
    }
    # the interpreter's start-up, taken off the Python ways
    baseline = child_cpu([py, "-c", "import av, cv2, numpy, pipeline.recording"])
    per_hour = {}
    for name, (command, source) in ways.items():
        cpu = child_cpu(command) - (baseline if command[0] == py else 0.0)
        per_hour[name] = cpu / seconds_of(source) * 3600
        print(f"{name:14s} {per_hour[name]:8.1f} CPU s per camera-hour")
    for recorded in ("record-pyav", "record-ffmpeg"):
        for decoded in ("decode-opencv", "decode-pyav"):
            ratio = per_hour[recorded] / per_hour[decoded]
            print(f"{recorded} / {decoded}: {ratio:.4f} (goal <= 0.05)")


if __name__ == "__main__":
    main()
