"""The `vapipe` command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pipeline.apps.cli.parser import build_parser
from pipeline.engine.frame_queue import QueuePolicy
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import VapipeError

log = logging.getLogger("vapipe")

EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def _sources(args: argparse.Namespace, options: StreamOptions) -> list:
    """The command line's sources, files made simulated cameras by `--realtime`/`--loop`."""
    from sources import simulate, sources_from_specs

    return [
        simulate(source, realtime=args.realtime, loop=args.loop)
        for source in sources_from_specs(args.sources, options.live)
    ]


def _model_options(args: argparse.Namespace) -> dict:
    return dict(
        device=args.device, adapter=args.adapter, conf=args.conf, iou=args.iou,
        nireq=args.nireq, labels=args.labels,
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from pipeline.apps.cli.progress import ProgressReporter
    from pipeline.engine.pipeline import Pipeline
    from pipeline.outputs.sinks import AnnotatedVideoSink, JsonlSink

    if args.save_video and not args.out:
        raise VapipeError("--save-video needs --out DIR to write the videos to")
    sinks = [JsonlSink(args.out)] if args.out else []
    if args.save_video:
        sinks.append(AnnotatedVideoSink(args.out))
    options = _stream_options(args)
    with Pipeline(
        _sources(args, options), args.model, sinks=sinks, streams=options, **_model_options(args)
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
    from pipeline.apps.demo.app import Demo, DemoOptions, default_sources
    from pipeline.apps.demo.default_model import default_model

    if args.headless and not args.serve:
        raise VapipeError("--headless shows nothing without --serve HOST:PORT")
    args.sources = args.sources or default_sources()
    model = args.model or default_model()
    options = DemoOptions(
        size=args.size, window=not args.headless, serve=args.serve, duration=args.duration
    )
    streams = _stream_options(args)
    demo = Demo(_sources(args, streams), model, options, streams=streams, **_model_options(args))
    summary = demo.run()
    print(summary.format_text())
    return EXIT_STREAM_FAILED if summary.failed else EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    from pipeline.apps.batch.job import BatchJob
    from pipeline.apps.cli.progress import ProgressReporter

    job = BatchJob(
        args.inputs, args.model, args.out, patterns=args.glob, concurrency=args.concurrency,
        force=args.force, save_video=args.save_video, **_model_options(args),
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

    from pipeline.apps.bench import run_bench

    report = run_bench(
        args.model, args.sources, streams=args.streams, device=args.device,
        seconds=args.seconds, nireq=args.nireq, rounds=args.rounds,
    )  # fmt: skip
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from pipeline.apps.serve.main import serve

    return serve(args.config, read_only=args.read_only_config, check_only=args.check)


def _devices(args: argparse.Namespace) -> int:
    import openvino as ov

    from pipeline.models.runtime import describe_devices

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
            "run": _run, "batch": _batch, "demo": _demo, "bench": _bench, "serve": _serve,
            "devices": _devices,
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
