"""The `vapipe` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.apps.cli.parser import build_parser
from pipeline.apps.cli.recording import (
    check_evidence_options,
    check_recording_options,
    evidence_sinks,
    recording,
)
from pipeline.apps.stopping import EXIT_INTERRUPTED, StopController
from pipeline.atomic import check_writable_folder
from pipeline.engine.service_classes import Scheduling
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import OutputError, VapipeError

if TYPE_CHECKING:
    from pipeline.analytics import AnalyticsOptions
    from pipeline.apps.batch.job import BatchJob
    from pipeline.models.detector_options import DetectorOptions
    from pipeline.summary import RunSummary

log = logging.getLogger("vapipe")

EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE = 0, 1, 2


def _stream_options(args: argparse.Namespace) -> StreamOptions:
    """StreamOptions from the command line; sets FFmpeg's capture options when live."""
    from sources import configure_ffmpeg_capture, is_live_uri, split_spec

    if any(is_live_uri(split_spec(spec)[1]) for spec in args.sources):
        configure_ffmpeg_capture(args.rtsp_transport)  # process-wide: FFmpeg's own setting
    return StreamOptions.from_values(
        vars(args), own_transport=False, classes=dict(args.classes),
        scheduling=Scheduling(args.scheduling), batch_requests=args.batch_requests,
        motion=_motion(args),
    )  # fmt: skip


def _motion(args: argparse.Namespace):
    """MotionOptions from `--motion` and its settings (each implies it), or None; a malformed
    mask raises MotionError, naming the option."""
    settings = {
        "threshold": args.motion_threshold, "min_area": args.motion_min_area,
        "keepalive": args.motion_keepalive,
    }  # fmt: skip
    if not (args.motion or args.motion_mask or any(v is not None for v in settings.values())):
        return None
    from pipeline.engine.motion_options import MotionOptions, parse_motion_mask

    masks = tuple(parse_motion_mask(text) for text in args.motion_mask)
    given = {key: value for key, value in settings.items() if value is not None}
    return MotionOptions(masks=masks, **given)


def _analytics(args: argparse.Namespace):
    """AnalyticsOptions from `--track`, `--line`, `--zone`, `--anchor`, or None (no
    tracking); a malformed line or zone raises AnalyticsError, naming the option."""
    if not (args.track or args.line or args.zone):
        return None
    from pipeline.analytics import TrackerOptions, analytics_options

    tracker = TrackerOptions(confirm_seconds=args.confirm_seconds)
    return analytics_options(args.line, args.zone, args.anchor, tracker, args.zone_min_seconds)


def _check_classes(args: argparse.Namespace, names: Sequence[str]) -> None:
    unknown = sorted({name for name, _ in args.classes} - set(names))
    if unknown:
        raise VapipeError(
            f"--class {', '.join(unknown)}: no such stream; streams: {', '.join(names)}"
        )


def _decoder(args: argparse.Namespace):
    """DecoderOptions from `--decoder`, `--no-deblocking` and `--skip-nonref` (a SourceError
    if they clash or PyAV is missing: found before any work)."""
    from sources import DecoderOptions

    return DecoderOptions(args.decoder, deblock=args.deblocking, skip_nonref=args.skip_nonref)


def _sources(args: argparse.Namespace, options: StreamOptions) -> list:
    """The command line's sources, files made simulated cameras by `--realtime`/`--loop`."""
    from sources import simulate, sources_from_specs

    return [
        simulate(source, realtime=args.realtime, loop=args.loop)
        for source in sources_from_specs(args.sources, options.live, _decoder(args))
    ]


def _detector_options(args: argparse.Namespace) -> DetectorOptions:
    """The model's options from the command line (a malformed --classify spec: VapipeError)."""
    from pipeline.models.detector_options import DetectorOptions

    return DetectorOptions(
        device=args.device, adapter=args.adapter, conf=args.conf, iou=args.iou,
        nireq=args.nireq, labels=args.labels, input_size=args.input_size,
        **_classify_options(args),
    )  # fmt: skip


def _classify_options(args: argparse.Namespace) -> dict:
    """Pipeline's `classify` and `classify_options` from the command line (none without
    --classify); a malformed spec is a VapipeError here, before any work."""
    if not args.classify:
        return {}
    import dataclasses

    from pipeline.models.classifiers import ClassifyOptions, parse_class_names, parse_classify_spec

    names = parse_class_names(args.classify_labels)
    adapter = args.classify_adapter
    specs = [
        dataclasses.replace(parse_classify_spec(text, adapter), class_names=names)
        for text in args.classify
    ]
    options = ClassifyOptions(
        every=args.classify_every, min_size=args.classify_min_size,
        reclassify_seconds=args.reclassify_seconds,
    )  # fmt: skip
    return {"classify": specs, "classify_options": options}


def _output_error(error: OutputError) -> int:
    """A result file could not be written (after the work: not a usage error)."""
    print(f"vapipe: error: {error}", file=sys.stderr)
    return EXIT_STREAM_FAILED


def _run(args: argparse.Namespace, stop: StopController) -> int:
    from pipeline.apps.batch.job import BatchJob
    from pipeline.apps.cli.progress import ProgressReporter
    from pipeline.engine.pipeline import Pipeline
    from pipeline.outputs.sinks import AnnotatedVideoSink, EventsJsonlSink, JsonlSink

    if args.save_video and not args.out:
        raise VapipeError("--save-video needs --out DIR to write the videos to")
    analytics = _analytics(args)
    if args.batch and not args.out:
        raise VapipeError("--batch needs --out DIR (the batch results go to DIR/batch/)")
    if args.out:
        check_writable_folder(args.out)
    check_recording_options(args)
    job = (
        BatchJob(
            args.batch, None, args.out / "batch", save_video=args.save_video, analytics=analytics
        )
        if args.batch
        else None
    )
    sinks = [JsonlSink(args.out)] if args.out else []
    if args.out and analytics is not None:
        sinks.append(EventsJsonlSink(args.out))
    if args.save_video:
        sinks.append(AnnotatedVideoSink(args.out))
    check_evidence_options(args, analytics is not None)
    options = _stream_options(args)
    if args.workers and not args.ray:
        raise VapipeError("--workers needs --ray")
    if args.ray:
        if job is not None:
            raise VapipeError("--batch is not available with --ray; run `vapipe batch --ray`")
        if args.record is not None:
            raise VapipeError("--record is not available with --ray yet")
        if _decoder(args).decoder != "opencv":
            raise VapipeError("--decoder pyav is not available with --ray yet")
        if options.motion is not None:
            raise VapipeError("--motion is not available with --ray yet")
        return _run_on_cluster(args, sinks, options, analytics, stop)
    with (
        recording(args, _sources(args, options)) as recorded,
        Pipeline(
            recorded.sources, args.model, sinks=evidence_sinks(args, sinks, recorded.clock),
            streams=options,
            analytics=analytics, detector_options=_detector_options(args),
        ) as pipeline,
        stop.stopping(pipeline.stop),
    ):  # fmt: skip
        runtime = pipeline.runtime
        log.info(
            "%d streams, model %s (%s adapter), device %s on %s, %d requests",
            len(pipeline.sources), pipeline.model_path, pipeline.adapter.name,
            runtime.plan.device, ", ".join(runtime.execution_devices), runtime.nireq,
        )  # fmt: skip
        _check_classes(args, [source.name for source in pipeline.sources])
        if job is not None:
            job.start(pipeline)
        recorded.start()
        with ProgressReporter(enabled=not args.no_progress) as progress:
            summary = pipeline.run(on_tick=progress.update, duration=args.duration)
    return _finish_run(args, summary, job)


def _run_on_cluster(
    args: argparse.Namespace,
    sinks: list,
    options: StreamOptions,
    analytics: AnalyticsOptions | None,
    stop: StopController,
) -> int:
    from pipeline.apps.cli.progress import ProgressReporter
    from pipeline.apps.cluster.streams import ClusterRun

    if args.save_video:
        raise VapipeError("--save-video is not available with --ray (frames stay on the nodes)")
    run = ClusterRun(
        args.sources, args.model, sinks=sinks, streams=options,
        address=None if args.ray == "local" else args.ray, workers=args.workers,
        analytics=analytics, realtime=args.realtime, loop=args.loop,
        detector_options=_detector_options(args),
    )  # fmt: skip
    with stop.stopping(run.stop), ProgressReporter(enabled=not args.no_progress) as progress:
        summary = run.run(on_tick=progress.update, duration=args.duration)
    return _finish_run(args, summary)


def _finish_run(args: argparse.Namespace, summary: RunSummary, job: BatchJob | None = None) -> int:
    print(summary.format_text())
    if job is not None and job.report is not None:
        print(f"batch job: {job.report.format_text()}")
        print(f"batch report: {args.out / 'batch' / 'report.json'} and report.csv")
    if args.out:
        try:
            summary.write_json(args.out / "summary.json")
        except OutputError as error:
            return _output_error(error)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    batch_failed = job is not None and job.report is not None and job.report.failed
    return EXIT_STREAM_FAILED if summary.failed or batch_failed else EXIT_OK


def build_demo(args: argparse.Namespace):
    """The `Demo` for `vapipe demo`'s arguments: video files play at their own frame rate,
    as cameras (`--realtime`), unless `--fast` asks for them as fast as they decode."""
    from pipeline.apps.demo.app import Demo, DemoOptions, default_sources
    from pipeline.apps.demo.default_model import default_model

    if args.headless and not args.serve:
        raise VapipeError("--headless shows nothing without --serve HOST:PORT")
    if args.fast and args.realtime:
        raise VapipeError("--fast and --realtime contradict each other; give one")
    args.realtime = not args.fast
    args.sources = args.sources or default_sources()
    model = args.model or default_model()
    options = DemoOptions(
        size=args.size, window=not args.headless, serve=args.serve, duration=args.duration
    )
    streams = _stream_options(args)
    return Demo(
        _sources(args, streams), model, options, streams=streams, analytics=_analytics(args),
        detector_options=_detector_options(args),
    )  # fmt: skip


def _demo(args: argparse.Namespace, stop: StopController) -> int:
    demo = build_demo(args)
    with stop.stopping(demo.stop):
        summary = demo.run()
    print(summary.format_text())
    if stop.requested:  # a signal; `q` or Esc in the window is a normal end
        return EXIT_INTERRUPTED
    return EXIT_STREAM_FAILED if summary.failed else EXIT_OK


def _batch(args: argparse.Namespace, stop: StopController) -> int:
    from pipeline.apps.batch.job import BatchJob
    from pipeline.apps.cli.progress import ProgressReporter

    analytics = _analytics(args)
    options = dict(
        patterns=args.glob, concurrency=args.concurrency, force=args.force,
        save_video=args.save_video, motion=_motion(args),
        detector_options=_detector_options(args),
    )  # fmt: skip
    if args.workers and not args.ray:
        raise VapipeError("--workers needs --ray")
    check_writable_folder(args.out)
    if args.ray:
        from pipeline.apps.cluster.batch import ClusterBatchJob

        if options.pop("motion") is not None:
            raise VapipeError("--motion is not available with --ray yet")

        address = None if args.ray == "local" else args.ray
        job = ClusterBatchJob(
            args.inputs, args.model, args.out, address=address, workers=args.workers,
            analytics=analytics, **options,
        )  # fmt: skip
    else:
        job = BatchJob(args.inputs, args.model, args.out, analytics=analytics, **options)
    with stop.stopping(job.stop), ProgressReporter(enabled=not args.no_progress) as progress:
        try:
            report = job.run(
                on_tick=lambda p, ended, total: progress.update(p, files=(ended, total))
            )
        except OutputError as error:
            return _output_error(error)
    print(report.format_text())
    print(f"report: {args.out / 'report.json'} and report.csv")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STREAM_FAILED if report.failed else EXIT_OK


def _bench(args: argparse.Namespace, stop: StopController) -> int:
    import json

    from pipeline.apps.bench import run_bench

    report = run_bench(
        args.model, args.sources, streams=args.streams, device=args.device,
        seconds=args.seconds, nireq=args.nireq, rounds=args.rounds, stop=stop,
        labels=args.labels, track=args.track, **_classify_options(args),
    )  # fmt: skip
    if report is None:
        print("vapipe: interrupted before a round completed: nothing to report", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return EXIT_INTERRUPTED if stop.requested else EXIT_OK


def _serve(args: argparse.Namespace, stop: StopController) -> int:
    from pipeline.apps.serve.main import serve

    return serve(args.config, stop, read_only=args.read_only_config, check_only=args.check)


def _devices(args: argparse.Namespace, stop: StopController) -> int:
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
    # SIGTERM (and Ctrl-C) stop cleanly: frames in flight finish, sinks are flushed, the
    # summary or report is written, exit 130.
    stop = StopController()
    stop.install()
    commands = {
        "run": _run, "batch": _batch, "demo": _demo, "bench": _bench, "serve": _serve,
        "devices": _devices,
    }  # fmt: skip
    try:
        _configure_opencv()
        return commands[args.command](args, stop)
    except (VapipeError, OSError) as error:
        print(f"vapipe: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # from code that catches it itself, e.g. a library's wait
        sys.stderr.write("vapipe: interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        stop.uninstall()


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
